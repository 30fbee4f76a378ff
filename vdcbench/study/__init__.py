"""The study's experiments (arXiv 2412.21197, Tables 2-9) as resumable grids of cells.

``studies.toml`` declares each study (:mod:`.spec`); :mod:`.cells` expands one on a data set
into cells and their commands; :mod:`.matching` finds a cell's stored records wherever they lie;
:mod:`.cost` estimates the rest from measured wall times; :mod:`.executor` runs commands (in
this process, or any back end with the same interface); :mod:`.runner` ties them together and
writes the cells, the table (:mod:`.tables`, with the paper's own figures from :mod:`.paper`)
and the plot (:mod:`.plot`).
"""

from vdcbench.study.cells import CellCommand, Narrowing, StudyCell
from vdcbench.study.executor import CellOutcome, Executor, InProcessExecutor, StudyProgress
from vdcbench.study.runner import (StudyOptions, StudyOutputs, StudyPlan, plan_study, run_study,
                                   write_outputs)
from vdcbench.study.spec import Study, get_study, load_studies

__all__ = ["CellCommand", "CellOutcome", "Executor", "InProcessExecutor", "Narrowing",
           "Study", "StudyCell", "StudyOptions", "StudyOutputs", "StudyPlan", "StudyProgress",
           "get_study", "load_studies", "plan_study", "run_study", "write_outputs"]
