"""One fit on many processes (``torchrun``): the ranks, their shares of a batch, and the layers
whose arithmetic spans the whole batch.

A data-parallel fit must give what one process gives on the same global batch. Every random draw
of the trainer is keyed by (seed, epoch, clip), so a rank that prepares only its share of a batch
draws exactly what one process draws for those clips. Three things are not per clip and are
replaced here when (and only when) more than one process runs, so that single-process runs keep
their arithmetic bit for bit:

- BatchNorm normalises with the statistics of the whole batch. PyTorch's ``SyncBatchNorm``
  refuses CPU tensors, so :class:`AllReduceBatchNorm` gathers each rank's (count, mean, sum of
  squared deviations) and combines them (Chan et al.'s pairwise update, stable where
  E[x²] - E[x]² is not), on ``gloo`` and ``nccl`` alike; its backward all-reduces the two sums
  the input gradient needs.
- Dropout draws one mask for the whole batch from torch's generator; :class:`ShardDropout` draws
  that same global mask on every rank (the generator is reseeded per epoch, identically on every
  rank) and keeps its own rows.
- Losses are means over the batch: the trainer weights a rank's mean by its share of the batch,
  so that the sum over ranks is the global mean, whatever the shares (see :func:`share`).

Ranks take contiguous shares of a batch, the first ``n % world`` ranks one item more, so a batch
that does not divide by the number of ranks is still trained as one process would train it; a
rank whose share is empty still joins every collective. Only rank 0 writes.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from vdcbench.core.errors import VdcError

# What torchrun (torch.distributed.run) sets in every worker's environment.
TORCHRUN_VARIABLES = ("WORLD_SIZE", "RANK", "LOCAL_RANK")


@dataclass(frozen=True)
class World:
    """This process's place among the processes of one run."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0       # the rank on this machine: which GPU it drives

    @property
    def is_writer(self) -> bool:
        """Whether this process writes records, checkpoints, teachers and progress (rank 0)."""
        return self.rank == 0

    @property
    def parallel(self) -> bool:
        return self.size > 1

    def device(self, device: str) -> str:
        """The device this rank trains on: a bare ``cuda`` becomes its local GPU; a numbered
        GPU is refused, since every rank would take that one."""
        if self.parallel and device == "cuda":
            return f"cuda:{self.local_rank}"
        if self.parallel and device.startswith("cuda:"):
            raise VdcError(f"--device {device} on {self.size} processes would put every one on "
                           f"that GPU; pass --device cuda (each process takes the GPU of its "
                           f"LOCAL_RANK)")
        return device


SINGLE = World()


def launch_from_env(environ: Mapping[str, str] | None = None) -> World:
    """The world torchrun describes in ``environ`` (default: this process's), else ``SINGLE``;
    a one-line ``VdcError`` for variables that do not describe one."""
    environ = os.environ if environ is None else environ
    if "WORLD_SIZE" not in environ:
        return SINGLE
    try:
        size, rank = int(environ["WORLD_SIZE"]), int(environ.get("RANK", "0"))
        local = int(environ.get("LOCAL_RANK", str(rank)))
    except ValueError:
        raise VdcError("torchrun's WORLD_SIZE, RANK and LOCAL_RANK must be integers, not "
                       + ", ".join(f"{k}={environ.get(k)!r}" for k in TORCHRUN_VARIABLES)) from None
    if size < 1 or not 0 <= rank < size or local < 0:
        raise VdcError(f"torchrun's RANK {rank} (LOCAL_RANK {local}) is not a rank of "
                       f"WORLD_SIZE {size}")
    return World(rank=rank, size=size, local_rank=local)


def current_world() -> World:
    """The world of the process group this process has joined; ``SINGLE`` when none."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return SINGLE
    local = os.environ.get("LOCAL_RANK", "")
    return World(rank=dist.get_rank(), size=dist.get_world_size(),
                 local_rank=int(local) if local.isdigit() else dist.get_rank())


def backend_for(device: str) -> str:
    """``nccl`` between GPUs, ``gloo`` between CPU processes."""
    return "nccl" if torch.device(device).type == "cuda" else "gloo"


@contextmanager
def process_group(device: str, environ: Mapping[str, str] | None = None) -> Iterator[World]:
    """Join the process group torchrun launched this process into, for the block's duration.

    A process not started by torchrun (or started as its only process) joins nothing and gets
    ``SINGLE``: its fit is exactly the single-process one. A group someone already joined (a
    test harness) is used as it is and left to them.
    """
    world = launch_from_env(environ)
    if not world.parallel:
        yield SINGLE
        return
    if dist.is_initialized():
        yield current_world()
        return
    backend = backend_for(device)
    if backend == "nccl":
        torch.cuda.set_device(world.local_rank)
    try:
        dist.init_process_group(backend, rank=world.rank, world_size=world.size)
    except (RuntimeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise VdcError(f"cannot join torchrun's process group (rank {world.rank} of "
                       f"{world.size}, {backend}): {first}") from None
    try:
        yield world
    finally:
        dist.destroy_process_group()


def share(count: int, world: World) -> tuple[int, int]:
    """This rank's contiguous share ``[start, stop)`` of ``count`` items: the first
    ``count % world.size`` ranks take one item more (a share may be empty)."""
    base, extra = divmod(count, world.size)
    start = world.rank * base + min(world.rank, extra)
    return start, start + base + (1 if world.rank < extra else 0)


def all_reduce_sum(values: torch.Tensor) -> torch.Tensor:
    """The sum over ranks of ``values`` (a new tensor; the input is left as it was)."""
    total = values.clone()
    dist.all_reduce(total, op=dist.ReduceOp.SUM)
    return total


def broadcast_object(value: Any, world: World) -> Any:
    """Rank 0's ``value`` on every rank (what rank 0 alone read from disk, say)."""
    if not world.parallel:
        return value
    box = [value if world.is_writer else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


@dataclass
class BatchShard:
    """Where this rank's rows sit in the global batch of the step in progress: the trainer sets
    it before each forward, and layers that draw per batch (``ShardDropout``) read it."""

    total: int = 0
    offset: int = 0


# ------------------------------------------------------------------------------ batch norm
class _GlobalBatchNorm(torch.autograd.Function):
    """Training-mode batch norm over the union of every rank's batch."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor | None, bias: torch.Tensor | None,
                eps: float):
        channels = x.shape[1]
        dims = [0, *range(2, x.dim())]
        view = (1, channels, *([1] * (x.dim() - 2)))
        xf = x.float()
        count = x.numel() // channels if channels else 0
        if count:
            local_mean = xf.mean(dims)
            local_m2 = (xf - local_mean.view(view)).square().sum(dims)
        else:     # an empty share: it weighs nothing in the combination below
            local_mean = local_m2 = xf.new_zeros(channels)
        # Float64 for the exchange: a count of millions is exact, and so is the combination.
        packed = torch.cat([torch.tensor([float(count)], dtype=torch.float64, device=x.device),
                            local_mean.double(), local_m2.double()])
        gathered = [torch.empty_like(packed) for _ in range(dist.get_world_size())]
        dist.all_gather(gathered, packed)
        stats = torch.stack(gathered)
        counts, means, m2s = stats[:, :1], stats[:, 1:1 + channels], stats[:, 1 + channels:]
        total = float(counts.sum())
        if total <= 1:
            raise ValueError(f"batch norm over the whole batch needs more than 1 value per "
                             f"channel, got {total:.0f}")
        mean = (counts * means).sum(0) / total
        m2 = m2s.sum(0) + (counts * (means - mean).square()).sum(0)
        var = m2 / total
        invstd = (var + eps).rsqrt().float()
        xhat = (xf - mean.float().view(view)) * invstd.view(view)
        y = xhat
        if weight is not None:
            y = y * weight.float().view(view)
        if bias is not None:
            y = y + bias.float().view(view)
        ctx.save_for_backward(xhat, invstd, weight)
        ctx.total, ctx.has_bias = total, bias is not None
        ctx.param_dtype = (weight if weight is not None else bias if bias is not None else x).dtype
        unbiased = (m2 / (total - 1)).float()
        ctx.mark_non_differentiable(mean, unbiased)
        return y.to(x.dtype), mean.float(), unbiased

    @staticmethod
    def backward(ctx, grad: torch.Tensor, _mean: torch.Tensor, _var: torch.Tensor):
        xhat, invstd, weight = ctx.saved_tensors
        channels = xhat.shape[1]
        dims = [0, *range(2, xhat.dim())]
        view = (1, channels, *([1] * (xhat.dim() - 2)))
        g = grad.float()
        sum_g = g.sum(dims)
        sum_g_xhat = (g * xhat).sum(dims)
        # Every rank's loss depends on every rank's inputs through the shared statistics: the
        # input gradient needs the global sums (the parameters' local sums are reduced by DDP).
        total_g, total_g_xhat = all_reduce_sum(torch.cat([sum_g, sum_g_xhat])).split(channels)
        scale = invstd if weight is None else invstd * weight.float()
        grad_x = ((g - (total_g / ctx.total).view(view)
                   - xhat * (total_g_xhat / ctx.total).view(view)) * scale.view(view))
        grad_weight = sum_g_xhat.to(ctx.param_dtype) if weight is not None else None
        grad_bias = sum_g.to(ctx.param_dtype) if ctx.has_bias else None
        return grad_x.to(grad.dtype), grad_weight, grad_bias, None


class AllReduceBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm (any dimensionality) whose training statistics are the whole batch's, across
    every rank, on CPU (gloo) and GPU (nccl). Running statistics follow BatchNorm's rule on the
    global batch (momentum, unbiased variance); in eval mode, or with one process, it is
    BatchNorm exactly. Its state dict is BatchNorm's."""

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {input.dim()}D input)")

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        self._check_input_dim(input)
        batch_statistics = self.training or self.running_mean is None
        if not batch_statistics or current_world().size == 1:
            return super().forward(input)
        y, mean, var = _GlobalBatchNorm.apply(input, self.weight, self.bias, self.eps)
        if self.training and self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                factor = (1.0 / float(self.num_batches_tracked) if self.momentum is None
                          else self.momentum)
                self.running_mean.mul_(1 - factor).add_(mean.to(self.running_mean.dtype),
                                                        alpha=factor)
                self.running_var.mul_(1 - factor).add_(var.to(self.running_var.dtype),
                                                       alpha=factor)
        return y


# --------------------------------------------------------------------------------- dropout
class ShardDropout(nn.Module):
    """Dropout whose mask is the one a single process would draw for the global batch: every
    rank draws the whole mask (same generator state on every rank) and keeps its rows."""

    def __init__(self, p: float, shard: BatchShard):
        super().__init__()
        self.p = p
        self.shard = shard

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        stop = self.shard.offset + x.shape[0]
        if stop > self.shard.total:
            raise ValueError(f"rows {self.shard.offset}..{stop} lie outside the global batch of "
                             f"{self.shard.total}")
        # F.dropout(x) is x * F.dropout(ones): the same draws, the same scaling.
        mask = F.dropout(torch.ones((self.shard.total, *x.shape[1:]), dtype=x.dtype,
                                    device=x.device), self.p, True)
        return x * mask[self.shard.offset:stop]

    def extra_repr(self) -> str:
        return f"p={self.p}"


_PER_SAMPLE_DROPOUTS = (nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout,
                        nn.FeatureAlphaDropout)


def convert_for_data_parallel(module: nn.Module, shard: BatchShard) -> nn.Module:
    """``module`` with every BatchNorm an :class:`AllReduceBatchNorm` and every ``Dropout`` a
    :class:`ShardDropout` (children replaced in place; parameters and buffers are the same
    tensors). Other dropout kinds are refused: none of the protocol's nets has one."""
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and not isinstance(
            module, AllReduceBatchNorm):
        converted = AllReduceBatchNorm(module.num_features, module.eps, module.momentum,
                                       module.affine, module.track_running_stats)
        if module.affine:
            converted.weight, converted.bias = module.weight, module.bias
        converted.running_mean = module.running_mean
        converted.running_var = module.running_var
        converted.num_batches_tracked = module.num_batches_tracked
        converted.train(module.training)
        return converted
    if type(module) is nn.Dropout:
        converted = ShardDropout(module.p, shard)
        converted.train(module.training)
        return converted
    if isinstance(module, _PER_SAMPLE_DROPOUTS):
        raise VdcError(f"{type(module).__name__} cannot be drawn per global batch on several "
                       f"processes; train this net in one process")
    for name, child in module.named_children():
        replaced = convert_for_data_parallel(child, shard)
        if replaced is not child:
            setattr(module, name, replaced)
    return module
