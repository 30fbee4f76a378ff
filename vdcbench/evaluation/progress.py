"""What the library reports while it works: one typed callback object, rendered by the caller.

The library never prints; the CLI passes a :class:`Progress` that draws rich progress bars, a
notebook or a job runner may pass its own, and ``None`` means silence. Every method is a no-op
here, so a subclass overrides only the events it shows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vdcbench.evaluation.records import EvalRecord


class Progress:
    """Events of ``run_baseline`` and ``evaluate_archive``, in the order they happen."""

    # --- a teacher (the protocol's or a declared profile's) trained because
    # ``run_baseline(train_teacher=True)`` found none
    def teacher_started(self, net: str, dataset: str, epochs: int) -> None:
        """Training of ``net``'s teacher on ``dataset`` begins (``epochs`` in all)."""

    def teacher_step(self, net: str, dataset: str, epoch: int, epochs: int, step: int,
                     steps: int, loss: float) -> None:
        """Step ``step`` (1-based) of ``steps`` in epoch ``epoch`` (0-based) of ``epochs`` ended
        with ``loss``: progress within an epoch, which takes minutes on real data on a CPU."""

    def teacher_epoch(self, net: str, dataset: str, epoch: int, epochs: int, loss: float) -> None:
        """Epoch ``epoch`` (1-based) of ``epochs`` finished with mean training ``loss``."""

    # --- expert trajectories trained because ``run_baseline(train_experts=True)`` found too few
    def experts_started(self, method: str, dataset: str) -> None:
        """Training of the expert trajectories ``method`` reads on ``dataset`` begins."""

    def expert_epoch(self, expert: int, experts: int, epoch: int, epochs: int,
                     loss: float) -> None:
        """Expert ``expert`` (0-based) of ``experts`` finished epoch ``epoch`` (1-based)."""

    def experts_finished(self, method: str, dataset: str, trained: tuple[int, ...]) -> None:
        """The experts are there; ``trained`` names those trained now (none: all were saved)."""

    def teacher_finished(self, net: str, dataset: str, val_top1: float) -> None:
        """The teacher is trained and saved; ``val_top1`` is its validation top-1 %."""

    # --- condensation
    def condensation_started(self, method: str, dataset: str, track: str) -> None:
        """The method's ``condense`` is about to run."""

    def condensation_step(self, done: int, total: int | None, what: str) -> None:
        """The method reported ``done`` of ``total`` units of work (``what`` says which)."""

    # --- evaluation, per (net, seed)
    def evaluation_started(self, nets: tuple[str, ...], seeds: tuple[int, ...]) -> None:
        """Every net is set up (teachers found); seeds are scored net by net, seed by seed."""

    def seed_reused(self, net: str, record: EvalRecord) -> None:
        """A stored record with the same key was found: this seed is not trained again."""

    def seed_started(self, net: str, seed: int, epochs: int) -> None:
        """Training of the evaluation net for ``seed`` begins (``epochs`` in all)."""

    def evaluation_epoch(self, net: str, seed: int, epoch: int, epochs: int, loss: float) -> None:
        """Epoch ``epoch`` (1-based) of ``epochs`` of this seed finished with ``loss``."""

    def seed_finished(self, net: str, record: EvalRecord) -> None:
        """The seed is scored and its record written."""


SILENT = Progress()
