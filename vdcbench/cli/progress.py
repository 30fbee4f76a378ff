"""The library's progress events drawn on stderr, one phase at a time: rich bars on a terminal,
plain lines in a log (``vdcbench.cli.output.progress_bar``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from vdcbench.cli.output import console, out, progress_bar
from vdcbench.evaluation.progress import Progress

if TYPE_CHECKING:   # not imported at run time: jsonschema and rich.progress slow every start
    from rich.progress import Progress as RichBars, TaskID

    from vdcbench.cli.plain_progress import PlainProgress
    from vdcbench.evaluation.records import EvalRecord


class RichProgress(Progress):
    """Renders ``run_baseline`` and ``evaluate_archive`` events. A context manager: the bars
    stop on exit, so what the command prints afterwards lands below them."""

    def __init__(self) -> None:
        self._bars: RichBars | PlainProgress | None = None
        self._task: TaskID | int | None = None
        self._seed_tasks: dict[tuple[str, int], TaskID | int] = {}
        self._several_nets = False
        self._in_steps = False

    def __enter__(self) -> "RichProgress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._bars is not None:
            self._bars.stop()
            self._bars = None

    def _open(self) -> RichBars | PlainProgress:
        if self._bars is None:
            self._bars = progress_bar()
            self._bars.start()
        return self._bars

    def _phase(self, description: str, total: int | None) -> None:
        """A new bar set holding one task: a teacher's training, or a condensation."""
        self.close()
        self._task = self._open().add_task(description, total=total, info="")

    def teacher_started(self, net: str, dataset: str, epochs: int) -> None:
        self._in_steps = False
        self._phase(f"teacher {net} on {dataset}", epochs)

    def teacher_step(self, net: str, dataset: str, epoch: int, epochs: int, step: int,
                     steps: int, loss: float) -> None:
        # Counted in steps once they are reported: an epoch on real data takes minutes.
        self._in_steps = True
        self._open().update(self._task, total=epochs * steps, completed=epoch * steps + step,
                            info=f"epoch {epoch + 1}/{epochs} step {step}/{steps} "
                                 f"loss {loss:.3f}")

    def teacher_epoch(self, net: str, dataset: str, epoch: int, epochs: int, loss: float) -> None:
        if self._in_steps:
            self._open().update(self._task, info=f"epoch {epoch}/{epochs} done, mean loss "
                                                 f"{loss:.3f}")
        else:
            self._open().update(self._task, completed=epoch, info=f"loss {loss:.3f}")

    def experts_started(self, method: str, dataset: str) -> None:
        self._phase(f"{method} experts on {dataset}", None)

    def expert_epoch(self, expert: int, experts: int, epoch: int, epochs: int,
                     loss: float) -> None:
        self._open().update(self._task, total=experts * epochs,
                            completed=expert * epochs + epoch,
                            info=f"expert {expert + 1}/{experts} epoch {epoch}/{epochs} "
                                 f"loss {loss:.3f}")

    def experts_finished(self, method: str, dataset: str, trained: tuple[int, ...]) -> None:
        self.close()
        out.print(f"{method} experts on {dataset}: "
                  + (f"trained {len(trained)} ({', '.join(map(str, trained))})" if trained
                     else "all saved already"))

    def teacher_finished(self, net: str, dataset: str, val_top1: float) -> None:
        self.close()
        out.print(f"trained the {net} teacher on {dataset}: validation top-1 {val_top1:.1f}%")

    def condensation_started(self, method: str, dataset: str, track: str) -> None:
        self._phase(f"{method} on {dataset} {track}", None)

    def condensation_step(self, done: int, total: int | None, what: str) -> None:
        if self._bars is not None and self._task is not None:
            self._bars.update(self._task, completed=done, total=total, info=what)

    def evaluation_started(self, nets: tuple[str, ...], seeds: tuple[int, ...]) -> None:
        self.close()
        self._several_nets = len(nets) > 1
        self._open()

    def _prefix(self, net: str) -> str:
        return f"{net} " if self._several_nets else ""

    def seed_reused(self, net: str, record: EvalRecord) -> None:
        console.print(f"{self._prefix(net)}seed {record.key.seed}: reusing record "
                      f"({record.top1:.1f}% top-1)")

    def seed_started(self, net: str, seed: int, epochs: int) -> None:
        self._seed_tasks[(net, seed)] = self._open().add_task(f"{self._prefix(net)}seed {seed}",
                                                              total=epochs, info="")

    def evaluation_epoch(self, net: str, seed: int, epoch: int, epochs: int, loss: float) -> None:
        self._open().update(self._seed_tasks[(net, seed)], completed=epoch,
                            info=f"loss {loss:.3f}")
