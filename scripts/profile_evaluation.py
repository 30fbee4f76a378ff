"""Where one protocol-v1 evaluation seed spends its wall time, against its FLOP bound.

    OMP_NUM_THREADS=2 python scripts/profile_evaluation.py r.tar --seed 0 --json prof.json

The bound is the seed's arithmetic (training: 3 × forward GFLOPs a clip, as the record's
``train_gflops``; validation: one forward a clip at every scored epoch) divided by the float32
matmul rate measured in the same process (n = 1024, 2n³ FLOPs a product), before and after the
evaluation so a drifting clock shows. The evaluation is the one ``vdcbench evaluate`` runs
(``evaluate_cell``), into a scratch results folder, with timers wrapped around the trainer's parts
from outside (so the same script times older code): augmentation and batching (``prepare``),
the training forward, the optimiser, validation (``score``), checkpoints, and the rest of each
step (loss and backward). A second, shortened run (``--op-epochs``, 0 to skip) under
``torch.profiler`` lists the operators that take the time. The record's ``weights_sha256`` and
``by_epoch_top1`` are printed so two code versions can be compared bit for bit.

Run it on an otherwise idle machine: other work on the cores lands in every figure.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path

import torch


def matmul_gflops(n: int = 1024, seconds: float = 3.0) -> float:
    """Median rate of float32 n×n products over about ``seconds`` of repeats."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    rates, deadline = [], time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(rates) < 5:
        start = time.perf_counter()
        a @ b
        rates.append(2 * n ** 3 / (time.perf_counter() - start) / 1e9)
    rates.sort()
    return rates[len(rates) // 2]


class Timers:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)

    @contextmanager
    def part(self, name: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] += time.perf_counter() - start
            self.calls[name] += 1

    def wrap(self, owner, attribute: str, name: str) -> None:
        original = getattr(owner, attribute)
        timers = self

        def timed(*args, **kwargs):
            with timers.part(name):
                return original(*args, **kwargs)

        setattr(owner, attribute, timed)


def instrument(timers: Timers) -> None:
    """Timers around the trainer's parts; the training forward by hooks on the student."""
    from vdcbench.train import checkpoint as checkpoint_module
    from vdcbench.train import trainer as trainer_module

    trainer_cls = trainer_module.Trainer
    timers.wrap(trainer_cls, "prepare", "augmentation and batching")
    timers.wrap(trainer_cls, "step", "training step (all)")
    timers.wrap(trainer_module, "score", "validation")
    timed_score = trainer_module.score

    def score(net, validation, *args, **kwargs):
        timers.calls["validation clips"] += len(validation.labels)
        return timed_score(net, validation, *args, **kwargs)

    trainer_module.score = score
    timers.wrap(checkpoint_module.FitCheckpoint, "save", "checkpoint save")
    timers.wrap(trainer_module, "weights_sha256", "weights hash")
    original_init = trainer_cls.__init__

    def init(self, net, *args, **kwargs):
        original_init(self, net, *args, **kwargs)
        timers.wrap(self.optimizer, "step", "optimizer step")
        timers.wrap(self.optimizer, "zero_grad", "zero grad")
        starts: list[float] = []

        def before(module, inputs):
            if module.training:
                starts.append(time.perf_counter())

        def after(module, inputs, output):
            if module.training and starts:
                timers.seconds["training forward"] += time.perf_counter() - starts.pop()
                timers.calls["training forward"] += 1

        self.net.register_forward_pre_hook(before)
        self.net.register_forward_hook(after)

    trainer_cls.__init__ = init


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("archive", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: what OMP_NUM_THREADS gave torch)")
    parser.add_argument("--op-epochs", type=int, default=20,
                        help="epochs of the operator-level profile run (0: none)")
    parser.add_argument("--epochs", type=int, default=None,
                        help="a shortened schedule (a smoke run of this script; default: v1's)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    from vdcbench.evaluation.api import evaluate_cell

    timers = Timers()
    instrument(timers)
    rate_before = matmul_gflops()
    with tempfile.TemporaryDirectory() as scratch:
        started = time.perf_counter()
        record = evaluate_cell(args.archive, "minic3d", args.seed, results_dir=scratch,
                               epochs=args.epochs)
        wall = time.perf_counter() - started
    rate_after = matmul_gflops()
    rate = (rate_before + rate_after) / 2

    validations = len(record.by_epoch_top1)
    val_gflops = timers.calls["validation clips"] * record.net_gflops_forward
    total_gflops = record.train_gflops + val_gflops
    bound = total_gflops / rate
    step_parts = ("augmentation and batching", "training forward", "optimizer step", "zero grad")
    parts = dict(timers.seconds)
    parts["loss and backward (rest of step)"] = (
        parts.get("training step (all)", 0.0) - sum(parts.get(p, 0.0) for p in step_parts))
    accounted = (parts.get("training step (all)", 0.0) + parts.get("validation", 0.0)
                 + parts.get("checkpoint save", 0.0) + parts.get("weights hash", 0.0))
    parts["set-up and the rest (archive, split, net, record)"] = wall - accounted

    calls = dict(timers.calls)      # before the profiled run adds its own
    ops = None
    if args.op_epochs > 0:
        from torch.profiler import ProfilerActivity, profile
        with tempfile.TemporaryDirectory() as scratch, \
                profile(activities=[ProfilerActivity.CPU]) as prof:
            evaluate_cell(args.archive, "minic3d", args.seed, results_dir=scratch,
                          epochs=args.op_epochs)
        averages = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
        total_self = sum(e.self_cpu_time_total for e in averages) or 1.0
        ops = [{"op": e.key, "calls": e.count, "self_s": round(e.self_cpu_time_total / 1e6, 3),
                "share": round(e.self_cpu_time_total / total_self, 4)} for e in averages[:15]]

    report = {
        "archive": str(args.archive), "seed": args.seed, "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__, "matmul_gflops": [round(rate_before, 1), round(rate_after, 1)],
        "wall_s": round(wall, 2), "record_wall_s": record.wall_seconds,
        "train_gflops": record.train_gflops, "validation_gflops": round(val_gflops, 1),
        "validations": validations, "bound_s": round(bound, 2),
        "wall_over_bound": round(wall / bound, 3),
        "achieved_fraction_of_matmul": round(bound / wall, 3),
        "parts_s": {k: round(v, 2) for k, v in sorted(parts.items(), key=lambda kv: -kv[1])},
        "calls": calls,
        "top1": record.top1, "top5": record.top5, "by_epoch_top1": record.by_epoch_top1,
        "weights_sha256": record.weights_sha256, "final_loss": record.final_loss,
        "ops": ops,
    }
    if calls.get("validation") != validations:
        print(f"note: {calls.get('validation')} validation calls, "
              f"{validations} scored epochs", file=sys.stderr)
    text = json.dumps(report, indent=2)
    print(text)
    if args.json is not None:
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
