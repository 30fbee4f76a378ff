"""Which stored result records are a study cell's: the one place a cell is called done.

A record is a cell's when it says the same measurement in every field that sets results apart:
protocol hash, data set, track, label strategy, evaluation variant, temporal formation, net,
evaluation seed, schedule (epochs), teacher (the protocol's), and the method with its settings
and condensation seed. The archive's sha256 is not asked for: the cell's archive may not exist
yet, and a record made from the same method, settings and seed elsewhere (``submissions/``) is
the same cell. So a study resumes from records wherever they lie, and rebuilds a table from
committed records without condensing anything.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from vdcbench.evaluation.records import EvalRecord, load_records
from vdcbench.methods.settings import with_defaults
from vdcbench.protocol import Protocol
from vdcbench.study.cells import StudyCell
from vdcbench.study.spec import FORMATION_NONE


def record_formation(record: EvalRecord) -> str:
    """The temporal formation a record was scored through. Records written before formations
    were recorded (every 8-frame record) name none: they mean ``none``. Read from the key, else
    from the record, where the evaluation keeps it."""
    for holder in (record.key, record):
        value = getattr(holder, "formation", None)
        if value:
            return str(value)
    return FORMATION_NONE


def condensation_settings(cell: StudyCell) -> dict[str, str]:
    """The ``--set`` values the cell's archive is condensed with: its arm's, and its formation
    where the method takes one as a setting (the study condenses through the formation it
    evaluates with)."""
    settings = {k: v if isinstance(v, str) else json.dumps(v) for k, v in cell.arm.settings}
    if (cell.formation != FORMATION_NONE and "formation" not in settings
            and _has_setting(cell.method, "formation")):
        settings["formation"] = cell.formation
    return settings


def _has_setting(method: str, name: str) -> bool:
    from vdcbench.methods import get_method
    config = get_method(method).Config
    return dataclasses.is_dataclass(config) and name in {f.name for f in dataclasses.fields(config)}


@functools.lru_cache(maxsize=None)
def _cell_config(method: str, settings: tuple[tuple[str, str], ...]) -> str:
    """The settings a method runs with for ``settings`` (presets applied, defaults filled in),
    as canonical JSON of what a record's config holds."""
    from vdcbench.methods import get_method
    config = get_method(method).config_from_strings(dict(settings))
    body = dataclasses.asdict(config) if dataclasses.is_dataclass(config) else {}
    return json.dumps({**_defaults(method), **json.loads(json.dumps(body))}, sort_keys=True)


@functools.lru_cache(maxsize=None)
def _defaults(method: str) -> dict[str, Any]:
    """``with_defaults(method, {})``, once per method: it looks the method up every call."""
    return with_defaults(method, {})


# A default of 0 or "" is a value a method resolves when it runs (Forgetting's ``epochs = 0``:
# the teacher recipe's) and records resolved; such a key matches whatever the record holds
# unless the cell sets it. Every other key must hold the cell's value: a record made with
# another ``--set`` (RDED's whole-frame ablation) is another cell.
_RESOLVED_AT_RUN_TIME = (0, "")


def same_settings(record: EvalRecord, cell: StudyCell) -> bool:
    return record.method.name == cell.method and config_matches(record.method.config, cell)


def config_matches(config: dict[str, Any] | None, cell: StudyCell) -> bool:
    """Whether a method config as an archive or record holds it is the one ``cell`` runs."""
    settings = condensation_settings(cell)
    wanted = json.loads(_cell_config(cell.method, tuple(sorted(settings.items()))))
    held = {**_defaults(cell.method), **(config or {})}
    for key in set(wanted) | set(held):
        if wanted.get(key) == held.get(key):
            continue
        if (key not in settings and key in wanted and held.get(key) is not None
                and not isinstance(wanted[key], bool) and wanted[key] in _RESOLVED_AT_RUN_TIME):
            continue
        return False
    return True


def matches(record: EvalRecord, cell: StudyCell, protocol: Protocol, epochs: int) -> bool:
    k = record.key
    return (k.protocol_sha256 == protocol.sha256 and k.dataset == cell.dataset
            and k.track == cell.track and k.label_strategy == cell.labels
            and k.variant == cell.variant and k.net == cell.net and k.seed == cell.seed
            and record.epochs == epochs and k.teacher_profile is None
            and record.method.name == cell.method
            and record.method.seed == cell.condensation_seed
            and record_formation(record) == cell.formation
            and same_settings(record, cell))


class RecordIndex:
    """The records under some folders, found by cell. Folders that overlap count a record once."""

    def __init__(self, records: Iterable[EvalRecord]):
        by_key = {r.key: r for r in records}
        self._by_place: dict[tuple, list[EvalRecord]] = {}
        for record in by_key.values():
            self._by_place.setdefault(self._place(record.key.dataset, record.key.track,
                                                  record.key.seed, record.method.name),
                                      []).append(record)

    @classmethod
    def of_folders(cls, folders: Sequence[Path]) -> "RecordIndex":
        return cls(r for folder in folders if Path(folder).is_dir()
                   for r in load_records(Path(folder)))

    @staticmethod
    def _place(dataset: str, track: str, seed: int, method: str) -> tuple:
        return dataset, track, seed, method

    def add(self, record: EvalRecord) -> None:
        place = self._place(record.key.dataset, record.key.track, record.key.seed,
                            record.method.name)
        members = self._by_place.setdefault(place, [])
        if all(r.key != record.key for r in members):
            members.append(record)

    def of_cell(self, cell: StudyCell, protocol: Protocol, epochs: int) -> list[EvalRecord]:
        """Every record that is ``cell``'s (several when condensed sets of one description were
        made more than once: a table pools them and says how many)."""
        candidates = self._by_place.get(self._place(cell.dataset, cell.track, cell.seed,
                                                    cell.method), [])
        return [r for r in candidates if matches(r, cell, protocol, epochs)]

    def all_records(self) -> list[EvalRecord]:
        return [r for members in self._by_place.values() for r in members]
