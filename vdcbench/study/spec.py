"""The study's experiments as data: ``studies.toml`` read into frozen objects, one registry.

A :class:`Study` is a grid: arms (methods, each with the ``--set`` values it runs with) × shapes
(tracks and their temporal formation) × label strategies × evaluation variants × nets ×
condensation seeds × evaluation seeds, and the table layout the paper printed it in. The file
is data, not protocol: it enters no hash, and a record made by a study says everything that
sets it apart (variant, formation, schedule) itself.
"""

from __future__ import annotations

import functools
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vdcbench.core.errors import UnknownNameError, VdcError

STUDIES_PATH = Path(__file__).with_name("studies.toml")
STUDIES_FORMAT = "vdcbench-studies"
STUDIES_FORMAT_VERSION = 1
ALL_VIDEOS = "all"          # a shape's ipc: every training video of a class (the study's N_c = N)
AXES = ("method", "shape", "ipc", "labels", "variant", "net")
PLOTS = ("bars", "lines")
FORMATION_NONE = "none"
_STUDY_KEYS = frozenset({"title", "paper", "arms", "ipc", "shapes", "labels", "variants", "nets",
                         "condensation_seeds", "seeds", "seeds_ipc1", "rows", "columns", "names",
                         "full_data_row", "plot"})
_ARM_KEYS = frozenset({"method", "label", "settings"})
_SHAPE_KEYS = frozenset({"ipc", "frames", "formation", "label"})
# (data set, method, ((setting, value), ...)): a method's settings on one data set.
DatasetSettings = tuple[tuple[str, str, tuple[tuple[str, Any], ...]], ...]


@dataclass(frozen=True)
class Arm:
    """A method run with fixed ``--set`` values; ``label`` names its row or column."""

    method: str
    label: str
    settings: tuple[tuple[str, Any], ...] = ()

    def settings_dict(self) -> dict[str, Any]:
        return dict(self.settings)


@dataclass(frozen=True)
class Shape:
    """A track and how its instances become the net's 8-frame clips. ``ipc`` is a number, or
    ``"all"`` until a data set resolves it."""

    ipc: int | str
    frames: int
    formation: str
    label: str


@dataclass(frozen=True)
class Study:
    name: str
    title: str
    paper: str                              # where the study printed it ("Table 2")
    arms: tuple[Arm, ...]
    shapes: tuple[Shape, ...]
    labels: tuple[str, ...]
    variants: tuple[str, ...]
    nets: tuple[str, ...]
    condensation_seeds: tuple[int, ...]
    seeds: tuple[int, ...]
    seeds_ipc1: tuple[int, ...] | None      # evaluation seeds at IPC 1, where they differ
    rows: tuple[str, ...]                   # axes naming a table row
    columns: tuple[str, ...]                # axes naming a table column
    names: tuple[tuple[str, str], ...] = ()  # an axis value's name in the table
    full_data_row: bool = False             # the full train split's teacher as the first row
    plot: str = "bars"
    # The file's [dataset_settings]: every arm of a method runs with them on that data set
    # unless the arm sets the key itself.
    dataset_settings: DatasetSettings = ()

    def arm_on(self, arm: Arm, dataset: str) -> Arm:
        """``arm`` as it runs on ``dataset``: the data set's settings of its method, then its own."""
        extra = {key: value for ds, method, settings in self.dataset_settings
                 if ds == dataset and method == arm.method for key, value in settings}
        if not extra:
            return arm
        return Arm(method=arm.method, label=arm.label,
                   settings=tuple(sorted({**extra, **arm.settings_dict()}.items())))

    def display(self, value: str) -> str:
        return dict(self.names).get(value, value)

    def seeds_for(self, ipc: int) -> tuple[int, ...]:
        return self.seeds_ipc1 if ipc == 1 and self.seeds_ipc1 is not None else self.seeds


def _refuse(where: str, detail: str) -> VdcError:
    return VdcError(f"{STUDIES_PATH.name}: {where}: {detail}")


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise _refuse(where, "must be a non-empty list of strings")
    return tuple(value)


def _ints(value: Any, where: str) -> tuple[int, ...]:
    if (not isinstance(value, list) or not value
            or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value)):
        raise _refuse(where, "must be a non-empty list of non-negative integers")
    return tuple(value)


def _arm(raw: Any, where: str) -> Arm:
    if isinstance(raw, str):
        return Arm(method=raw, label=raw)
    if not isinstance(raw, Mapping) or "method" not in raw or set(raw) - _ARM_KEYS:
        raise _refuse(where, f"an arm is a method name or a table of {sorted(_ARM_KEYS)}")
    settings = raw.get("settings", {})
    if not isinstance(settings, Mapping):
        raise _refuse(where, "settings must be a table")
    return Arm(method=str(raw["method"]), label=str(raw.get("label", raw["method"])),
               settings=tuple(sorted(settings.items())))


def _shape(raw: Any, where: str) -> Shape:
    if not isinstance(raw, Mapping) or set(raw) - _SHAPE_KEYS or "ipc" not in raw:
        raise _refuse(where, f"a shape is a table of {sorted(_SHAPE_KEYS)} with an ipc")
    ipc, frames = raw["ipc"], raw.get("frames", 8)
    if not (ipc == ALL_VIDEOS or (isinstance(ipc, int) and not isinstance(ipc, bool) and ipc > 0)):
        raise _refuse(where, f"ipc must be a positive integer or {ALL_VIDEOS!r}, not {ipc!r}")
    if not isinstance(frames, int) or isinstance(frames, bool) or frames < 1:
        raise _refuse(where, f"frames must be a positive integer, not {frames!r}")
    formation = str(raw.get("formation", FORMATION_NONE))
    return Shape(ipc=ipc, frames=frames, formation=formation,
                 label=str(raw.get("label", f"IPC {ipc}" if frames == 8 else f"[{ipc}, {frames}]")))


def _dataset_settings(raw: Any) -> DatasetSettings:
    where = "[dataset_settings]"
    if not isinstance(raw, Mapping):
        raise _refuse(where, "must be a table of data sets")
    out = []
    for dataset, methods in raw.items():
        if not isinstance(methods, Mapping):
            raise _refuse(f"{where} {dataset}", "must map method names to tables of settings")
        for method, settings in methods.items():
            if not isinstance(settings, Mapping) or not settings:
                raise _refuse(f"{where} {dataset}.{method}", "must be a non-empty table")
            out.append((str(dataset), str(method), tuple(sorted(settings.items()))))
    return tuple(out)


def _study(name: str, raw: Any,
           dataset_settings: DatasetSettings = ()
           ) -> Study:
    where = f"study {name!r}"
    if not isinstance(raw, Mapping):
        raise _refuse(where, "must be a table")
    unknown = set(raw) - _STUDY_KEYS
    if unknown:
        raise _refuse(where, f"unknown keys {sorted(unknown)}")
    if ("ipc" in raw) == ("shapes" in raw):
        raise _refuse(where, "give exactly one of ipc and shapes")
    if "shapes" in raw:
        if not isinstance(raw["shapes"], list) or not raw["shapes"]:
            raise _refuse(where, "shapes must be a non-empty list")
        shapes = tuple(_shape(s, f"{where} shape {i}") for i, s in enumerate(raw["shapes"]))
    else:
        shapes = tuple(Shape(ipc=k, frames=8, formation=FORMATION_NONE, label=f"IPC {k}")
                       for k in _ints(raw["ipc"], f"{where} ipc"))
    if not isinstance(raw.get("arms"), list) or not raw["arms"]:
        raise _refuse(where, "arms must be a non-empty list")
    arms = tuple(_arm(a, f"{where} arm {i}") for i, a in enumerate(raw["arms"]))
    rows, columns = (_strings(raw.get(k), f"{where} {k}") for k in ("rows", "columns"))
    for axis in rows + columns:
        if axis not in AXES:
            raise _refuse(where, f"unknown axis {axis!r} (axes: {', '.join(AXES)})")
    names = raw.get("names", {})
    if not isinstance(names, Mapping) or not all(isinstance(v, str) for v in names.values()):
        raise _refuse(where, "names must map values to strings")
    plot = raw.get("plot", "bars")
    if plot not in PLOTS:
        raise _refuse(where, f"plot must be one of {', '.join(PLOTS)}, not {plot!r}")
    return Study(
        name=name, title=str(raw.get("title", name)), paper=str(raw.get("paper", "")),
        arms=arms, shapes=shapes,
        labels=_strings(raw.get("labels", ["hard"]), f"{where} labels"),
        variants=_strings(raw.get("variants", ["official"]), f"{where} variants"),
        nets=_strings(raw.get("nets", ["minic3d"]), f"{where} nets"),
        condensation_seeds=_ints(raw.get("condensation_seeds", [0]),
                                 f"{where} condensation_seeds"),
        seeds=_ints(raw.get("seeds", [0, 1, 2]), f"{where} seeds"),
        seeds_ipc1=(None if "seeds_ipc1" not in raw
                    else _ints(raw["seeds_ipc1"], f"{where} seeds_ipc1")),
        rows=rows, columns=columns, names=tuple(sorted(names.items())),
        full_data_row=bool(raw.get("full_data_row", False)), plot=plot,
        dataset_settings=dataset_settings)


def parse_studies(raw: Mapping[str, Any]) -> dict[str, Study]:
    """Studies from a parsed studies file; anything unexpected is refused with where it is."""
    if raw.get("format") != STUDIES_FORMAT or raw.get("format_version") != STUDIES_FORMAT_VERSION:
        raise _refuse("the file", f"not a {STUDIES_FORMAT} v{STUDIES_FORMAT_VERSION} file")
    top = {"format", "format_version", "studies", "dataset_settings"}
    if set(raw) - top:
        raise _refuse("the file", f"unknown keys {sorted(set(raw) - top)}")
    studies = raw.get("studies")
    if not isinstance(studies, Mapping) or not studies:
        raise _refuse("the file", "declares no [studies.NAME]")
    settings = _dataset_settings(raw.get("dataset_settings", {}))
    return {name: _study(name, body, settings) for name, body in studies.items()}


def load_studies(path: Path | None = None) -> dict[str, Study]:
    """The studies of ``path`` (default: the shipped ``studies.toml``), by name."""
    if path is None:
        return _shipped()
    return _read(Path(path))


@functools.lru_cache(maxsize=1)
def _shipped() -> dict[str, Study]:
    return _read(STUDIES_PATH)


def _read(path: Path) -> dict[str, Study]:
    try:
        raw = tomllib.loads(path.read_text())
    except OSError as exc:
        raise VdcError(f"cannot read studies file {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise VdcError(f"studies file {path} is not TOML: {exc}") from None
    return parse_studies(raw)


def get_study(name: str, studies: Mapping[str, Study] | None = None) -> Study:
    """The study called ``name``; an unknown name says which one was meant."""
    known = load_studies() if studies is None else studies
    if name not in known:
        raise UnknownNameError("study", name, known)
    return known[name]
