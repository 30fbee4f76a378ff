"""``leaderboard/leaderboard.json``: the README's data for machines, with the tie rule's
parameters, the paths of the plots and gallery images, and every entry as submitted."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from vdcbench.leaderboard.render.gallery import GalleryImage
from vdcbench.leaderboard.render.plots import Plot
from vdcbench.leaderboard.tables import Leaderboard
from vdcbench.leaderboard.verification import status_of
from vdcbench.leaderboard.ties import ALPHA, MIN_PAIRS, MIN_PERMUTATION_PAIRS

LEADERBOARD_FORMAT = "vdcbench-leaderboard"
LEADERBOARD_VERSION = 1


def render_json(board: Leaderboard, plots: Mapping[str, Sequence[Plot]],
                gallery: Sequence[GalleryImage]) -> str:
    data = {
        "format": LEADERBOARD_FORMAT,
        "format_version": LEADERBOARD_VERSION,
        "tie_rule": {"alpha": float(ALPHA), "min_pairs": MIN_PAIRS,
                     "min_permutation_pairs": MIN_PERMUTATION_PAIRS,
                     "pairing": "evaluation seed",
                     "rule": "tied unless every paired difference has the same sign; from "
                             "min_permutation_pairs paired seeds, an exact two-sided sign-flip "
                             "test at alpha"},
        "tables": [t.to_dict() for t in board.tables],
        "plots": {slug: [p.path for p in shown] for slug, shown in sorted(plots.items())},
        "gallery": {image.path: [e.id for e in image.entries]
                    for image in sorted(gallery, key=lambda image: image.path)},
        "entries": [e.to_dict() for e in board.entries],
        # Every entry's status, an entry without one read as what it is (self-reported).
        "statuses": {e.id: status_of(e).to_dict() for e in board.entries},
        "unranked": [{"entry": u.entry.id, "reason": u.reason} for u in board.unranked],
    }
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False,
                      allow_nan=False) + "\n"
