"""miniUCF: the 50-class UCF101 subset of the earlier video-distillation work, read from a UCF101
root (see :mod:`vdcbench.data.sources.ucf101` for the roots accepted) on UCF101's split.

Classes and their order are the protocol's list, numbered 0..49 as listed. A listed class that the
root's ``classInd.txt`` lacks is reported in ``missing`` rather than refused, like a Kinetics video
gone from the web: the listing says what it could not find.
"""

from __future__ import annotations

from pathlib import Path

from vdcbench.data.listing import SourceListing, VideoEntry
from vdcbench.data.sources.layout import build_listing, expect_protocol, split_number
from vdcbench.data.sources.ucf101 import read_layout
from vdcbench.core.errors import VdcError
from vdcbench.protocol import Protocol


def list_miniucf(root: Path, *, protocol: Protocol) -> SourceListing:
    ds = protocol.dataset("miniucf")
    expect_protocol(ds, class_order="listed")
    if not ds.classes:
        raise VdcError("the protocol lists no miniucf classes")
    layout = read_layout(root, split_number(ds))
    label_of = {c.casefold(): i for i, c in enumerate(ds.classes)}
    entries = [VideoEntry(key=f"{v.folder}/{v.name}", path=v.path,
                          label=label_of[v.folder.casefold()], split=v.split)
               for v in layout.videos if v.folder.casefold() in label_of]
    in_index = {c.casefold() for c in layout.class_index}
    missing = list(m for m in layout.missing
                   if m[0].split("/", 1)[0].casefold() in label_of)
    missing += [(c, "miniUCF class not in the UCF101 root's classInd.txt")
                for c in ds.classes if c.casefold() not in in_index]
    return build_listing(
        "miniucf", layout.root, ds.classes, entries, missing=missing,
        split_description=(f"miniUCF: the protocol's {len(ds.classes)} UCF101 classes numbered in "
                           f"listed order, UCF101 official split {layout.split} "
                           f"(trainlist{layout.split:02d}.txt / testlist{layout.split:02d}.txt)"))
