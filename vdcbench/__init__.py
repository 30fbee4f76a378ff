"""vdcbench: the open benchmark harness for video dataset condensation.

The library API (imported on first use, so ``import vdcbench`` stays light)::

    import vdcbench
    made = vdcbench.run_baseline("random", dataset="synthetic", ipc=1, output="r.tar")
    report = vdcbench.evaluate_archive(made.path, seeds=(0, 1, 2))
    print(report.nets[0].top1.format(2))

- ``run_baseline``: condense a data set with a registered method, write the archive
  (``CondensedArchive``);
- ``evaluate_archive``: score an archive over nets and seeds, resuming from stored records
  (``EvaluationReport`` of ``NetResult`` per net, ``EvalRecord`` per seed);
- ``evaluate_cell``: one (archive, net, seed), the unit of a study or a sweep;
- ``Progress``: subclass it to watch either job.
"""

from __future__ import annotations

import importlib
from typing import Any

from vdcbench.core.version import __version__

# Public name -> the module that defines it.
_API = {
    "evaluate_archive": "vdcbench.evaluation.api",
    "evaluate_cell": "vdcbench.evaluation.api",
    "run_baseline": "vdcbench.evaluation.api",
    "CondensedArchive": "vdcbench.evaluation.api",
    "EvaluationReport": "vdcbench.evaluation.report",
    "EvaluatedArchive": "vdcbench.evaluation.report",
    "NetResult": "vdcbench.evaluation.report",
    "EvalRecord": "vdcbench.evaluation.records",
    "RecordKey": "vdcbench.evaluation.records",
    "Progress": "vdcbench.evaluation.progress",
}

__all__ = ["__version__", *_API]


def __getattr__(name: str) -> Any:
    # Importing torch and the layers below on ``import vdcbench`` would slow every CLI start and
    # every plugin import; the API is resolved the first time a name is asked for.
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'vdcbench' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))
