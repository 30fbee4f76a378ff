"""Where submitit runs cells: the executor options of a sweep's or a study's ``[executor]`` table
(each overridable on the command line) turned into a submitit executor, Slurm's or its local one.

submitit is imported only when a job is submitted or read back, so reading a sweep file and
every user error answer before it (and before torch).
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from vdcbench.core.errors import VdcError

EXECUTOR_KINDS = ("local", "slurm")
# submitit's local executor ends a job at its timeout (two minutes unless told): a local job
# without a ``time`` gets a week, longer than any cell of the protocol on a CPU.
LOCAL_DEFAULT_MINUTES = 7 * 24 * 60
JOB_NAME = "vdcbench"
_TIME = re.compile(r"(?:(?P<days>\d+)-)?(?P<hours>\d+):(?P<minutes>\d{1,2}):(?P<seconds>\d{1,2})")
_MEMORY = re.compile(r"(?P<amount>\d+(?:\.\d+)?)\s*(?P<unit>[KMGT])B?", re.IGNORECASE)


@dataclass(frozen=True)
class ClusterOptions:
    """How each job is asked for. Slurm reads every field; the local executor reads ``gpus``,
    ``time``, ``array_chunk`` and ``setup`` (it starts every job at once, on this machine)."""

    kind: str = "local"
    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    gpus: int = 0                       # per job (one node)
    cpus: int | None = None             # per job
    memory: str | None = None           # Slurm's spelling, e.g. "32G"
    time_minutes: int | None = None     # the job's wall-time limit
    array_chunk: int | None = None      # cells per job, run one after another (see chunk_size)
    max_parallel: int | None = None     # Slurm: array tasks running at once
    setup: tuple[str, ...] = ()         # shell lines before the job (module load, venv)

    def with_overrides(self, **values: Any) -> "ClusterOptions":
        """These options with each value that is not None in ``values`` (the command line's)."""
        known = {f.name for f in fields(self)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"not executor options: {sorted(unknown)}")
        chosen = {k: v for k, v in values.items() if v is not None}
        if "kind" in chosen:
            chosen["kind"] = check_kind(chosen["kind"], "--executor")
        if "memory" in chosen:
            chosen["memory"] = parse_memory(chosen["memory"], "--memory")
        if "time_minutes" in chosen and isinstance(chosen["time_minutes"], str):
            chosen["time_minutes"] = parse_time(chosen["time_minutes"], "--time")
        for name in ("gpus", "cpus", "array_chunk", "max_parallel"):
            if name in chosen:
                _positive(chosen[name], f"--{name.replace('_', '-')}", zero=name == "gpus")
        return replace(self, **chosen)

    def describe(self) -> str:
        parts = [self.kind]
        for label, value in (("partition", self.partition), ("account", self.account),
                             ("qos", self.qos), ("gpus", self.gpus or None),
                             ("cpus", self.cpus), ("memory", self.memory),
                             ("time", None if self.time_minutes is None
                              else f"{self.time_minutes} min")):
            if value is not None:
                parts.append(f"{label} {value}")
        if self.array_chunk is None and self.kind == "local":
            parts.append(f"at most {_cores()} jobs at once, one a core")
        else:
            chunk = self.array_chunk or 1
            parts.append(f"{chunk} cell{'s' if chunk != 1 else ''} a job")
        return ", ".join(parts)

    def chunk_size(self, cells: int) -> int:
        """Cells per job: ``array_chunk`` where given; else one on Slurm, and on this machine
        as many as spread the cells over one job per core. The local executor starts every job
        at once, and a study's hundreds of cells as as many processes would drown the machine;
        chunking them is the only bound it has (it queues nothing)."""
        if self.array_chunk is not None:
            return self.array_chunk
        if self.kind == "local":
            return max(1, math.ceil(cells / _cores()))
        return 1


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:      # not on Linux
        return os.cpu_count() or 1


_KEYS = {"kind": "kind", "partition": "partition", "account": "account", "qos": "qos",
         "constraint": "constraint", "gpus": "gpus", "cpus": "cpus", "memory": "memory",
         "time": "time_minutes", "array_chunk": "array_chunk", "max_parallel": "max_parallel",
         "setup": "setup"}


def check_kind(kind: Any, where: str) -> str:
    if kind not in EXECUTOR_KINDS:
        raise VdcError(f"{where}: the executor is one of {', '.join(EXECUTOR_KINDS)}, "
                       f"not {kind!r}")
    return kind


def _positive(value: Any, where: str, *, zero: bool = False) -> int:
    if (not isinstance(value, int) or isinstance(value, bool) or value < (0 if zero else 1)):
        raise VdcError(f"{where} must be a {'non-negative' if zero else 'positive'} integer, "
                       f"not {value!r}")
    return value


def parse_time(value: Any, where: str) -> int:
    """Minutes, from a number of minutes or Slurm's ``[D-]HH:MM:SS``; partial minutes round up."""
    if isinstance(value, int) and not isinstance(value, bool):
        return _positive(value, where)
    if isinstance(value, str) and value.strip().isdigit():
        return _positive(int(value), where)
    match = _TIME.fullmatch(str(value).strip())
    if match is None:
        raise VdcError(f"{where} {value!r}: a time is minutes (240) or [D-]HH:MM:SS "
                       f"('4:00:00', '1-12:00:00')")
    days, hours, minutes, seconds = (int(match.group(k) or 0)
                                     for k in ("days", "hours", "minutes", "seconds"))
    total = days * 1440 + hours * 60 + minutes + (1 if seconds else 0)
    if total < 1:
        raise VdcError(f"{where} {value!r} must be at least a minute")
    return total


def parse_memory(value: Any, where: str) -> str:
    """Slurm's memory spelling (``32G``, ``500M``) from ``32G``, ``32GB``, ``500 MB`` or a
    number of gigabytes."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return f"{int(value)}G" if float(value).is_integer() else f"{int(value * 1024)}M"
    match = _MEMORY.fullmatch(str(value).strip())
    if match is None or float(match.group("amount")) <= 0:
        raise VdcError(f"{where} {value!r}: memory is an amount with a unit, like 32G or 500M")
    amount, unit = float(match.group("amount")), match.group("unit").upper()
    if not amount.is_integer():
        smaller = {"T": "G", "G": "M", "M": "K"}.get(unit)
        if smaller is None:
            raise VdcError(f"{where} {value!r}: give whole kilobytes")
        return f"{int(amount * 1024)}{smaller}"
    return f"{int(amount)}{unit}"


def parse_cluster_options(table: Any, where: str) -> ClusterOptions:
    """An ``[executor]`` table; an unknown key or a bad value is one line naming it."""
    if not isinstance(table, Mapping):
        raise VdcError(f"{where}: [executor] must be a table")
    unknown = sorted(set(table) - set(_KEYS))
    if unknown:
        raise VdcError(f"{where}: [executor] has unknown keys {unknown} "
                       f"(its keys: {', '.join(_KEYS)})")
    values: dict[str, Any] = {}
    for key, value in table.items():
        name, at = _KEYS[key], f"{where}: [executor] {key}"
        if key == "kind":
            values[name] = check_kind(value, at)
        elif key in ("partition", "account", "qos", "constraint"):
            if not isinstance(value, str) or not value:
                raise VdcError(f"{at} must be a non-empty string")
            values[name] = value
        elif key in ("gpus", "cpus", "array_chunk", "max_parallel"):
            values[name] = _positive(value, at, zero=key == "gpus")
        elif key == "memory":
            values[name] = parse_memory(value, at)
        elif key == "time":
            values[name] = parse_time(value, at)
        else:
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise VdcError(f"{at} must be a list of shell lines")
            values[name] = tuple(value)
    return ClusterOptions(**values)


def load_executor_file(path: Path) -> ClusterOptions:
    """The ``[executor]`` table of a TOML file (a sweep file, or one holding only that table)."""
    try:
        raw = tomllib.loads(Path(path).read_text())
    except OSError as exc:
        raise VdcError(f"cannot read executor file {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise VdcError(f"executor file {path} is not TOML: {exc}") from None
    if "executor" not in raw:
        raise VdcError(f"{path}: no [executor] table (kind = \"slurm\", partition, gpus, ...)")
    return parse_cluster_options(raw["executor"], str(path))


def submitit_executor(options: ClusterOptions, folder: Path, device: str = "cpu"):
    """A submitit executor writing its pickles and logs under ``folder``."""
    import submitit

    folder = Path(folder).resolve()
    if options.kind == "local":
        if device.startswith("cuda") and options.gpus < 1:
            # The local executor sets CUDA_VISIBLE_DEVICES to the GPUs a job asked for: none.
            raise VdcError(f"--device {device} with the local executor needs gpus of at least 1 "
                           f"(it hides the GPUs a job does not ask for)")
        executor = submitit.LocalExecutor(folder)
        executor.update_parameters(
            timeout_min=options.time_minutes or LOCAL_DEFAULT_MINUTES,
            gpus_per_node=options.gpus, **({"setup": list(options.setup)} if options.setup
                                           else {}))
        return executor
    try:
        executor = submitit.SlurmExecutor(folder)
    except RuntimeError:
        raise VdcError("--executor slurm: no srun on PATH, so this is not a Slurm machine "
                       "(submit from the cluster's login node, or use --executor local)") from None
    parameters: dict[str, Any] = {"job_name": JOB_NAME}
    if options.time_minutes is not None:
        parameters["time"] = options.time_minutes
    for name in ("partition", "account", "qos", "constraint"):
        if getattr(options, name) is not None:
            parameters[name] = getattr(options, name)
    if options.gpus:
        parameters["gpus_per_node"] = options.gpus
    if options.cpus is not None:
        parameters["cpus_per_task"] = options.cpus
    if options.memory is not None:
        parameters["mem"] = options.memory
    if options.max_parallel is not None:
        parameters["array_parallelism"] = options.max_parallel
    if options.setup:
        parameters["setup"] = list(options.setup)
    executor.update_parameters(**parameters)
    return executor
