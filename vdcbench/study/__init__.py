"""The study's experiments (arXiv 2412.21197, Tables 2-9) as resumable grids of cells.

``studies.toml`` declares each study (:mod:`.spec`); :mod:`.cells` expands one on a data set
into cells and their commands; :mod:`.matching` finds a cell's stored records wherever they lie;
:mod:`.cost` estimates the rest from measured wall times; :mod:`.executor` runs commands (in
this process, or any back end with the same interface); :mod:`.runner` ties them together and
writes the cells, the table (:mod:`.tables`, with the paper's own figures from :mod:`.paper`)
and the plot (:mod:`.plot`).

The names below are imported on first use: reading the studies file (a name's "did you mean")
does not import torch.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "CellCommand": "cells", "Narrowing": "cells", "StudyCell": "cells",
    "CellOutcome": "executor", "Executor": "executor", "InProcessExecutor": "executor",
    "StudyProgress": "executor",
    "StudyOptions": "runner", "StudyOutputs": "runner", "StudyPlan": "runner",
    "plan_study": "runner", "run_study": "runner", "write_outputs": "runner",
    "Study": "spec", "get_study": "spec", "load_studies": "spec",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'vdcbench.study' has no attribute {name!r}")
    return getattr(importlib.import_module(f"vdcbench.study.{_EXPORTS[name]}"), name)
