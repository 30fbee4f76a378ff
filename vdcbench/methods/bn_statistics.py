"""BatchNorm input statistics: what SRe2L, G-VBSM and EDC match, and how they are recorded.

A BatchNorm layer in training mode normalises its input by the batch's per-channel mean and
(biased) variance over every axis but the channel; in eval mode it uses the running averages it
kept while the teacher trained. Statistics matching reads the same two numbers from a layer's
input through a forward pre-hook (:class:`BNInputs`), for the synthetic batch, and compares them
with the teacher's running averages (the data set's "global" statistics) and with per-class
statistics computed once over the train split (:func:`class_statistics`). As in EDC's code, a
class's statistics are the per-channel mean and variance of each clip (over time and space),
averaged over the class's clips: the spread between clips does not enter a class's variance.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm


def bn_layers(net: nn.Module) -> list[_BatchNorm]:
    """Every BatchNorm layer of ``net``, in module order (the first is the one EDC weights x10)."""
    return [m for m in net.modules() if isinstance(m, _BatchNorm)]


def batch_statistics(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and biased variance of (N, C, ...) over every axis but C: what a
    BatchNorm layer in training mode normalises by."""
    channels = x.shape[1]
    flat = x.transpose(0, 1).reshape(channels, -1)
    return flat.mean(1), flat.var(1, unbiased=False)


def sample_statistics(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-clip, per-channel mean and biased variance over time and space: (N, C) each."""
    flat = x.flatten(2)
    return flat.mean(2), flat.var(2, unbiased=False)


class BNInputs:
    """While entered, records the input of every BatchNorm layer of ``net`` at each forward."""

    def __init__(self, net: nn.Module):
        self.layers = bn_layers(net)
        self.inputs: list[torch.Tensor | None] = [None] * len(self.layers)
        self._handles: list = []

    def __enter__(self) -> "BNInputs":
        for index, layer in enumerate(self.layers):
            self._handles.append(layer.register_forward_pre_hook(self._recorder(index)))
        return self

    def _recorder(self, index: int):
        def record(module: nn.Module, args: tuple) -> None:
            self.inputs[index] = args[0]
        return record

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()


@dataclass(frozen=True)
class ClassStatistics:
    """Per layer, (K, C) class means of the clips' channel means and variances; clips per class."""

    means: tuple[torch.Tensor, ...]
    variances: tuple[torch.Tensor, ...]
    counts: torch.Tensor

    def to_tensors(self) -> dict[str, torch.Tensor]:
        out = {"counts": self.counts}
        for layer, (m, v) in enumerate(zip(self.means, self.variances)):
            out[f"mean.{layer}"], out[f"var.{layer}"] = m, v
        return out

    @classmethod
    def from_tensors(cls, tensors: dict[str, torch.Tensor]) -> "ClassStatistics":
        layers = sum(1 for key in tensors if key.startswith("mean."))
        return cls(means=tuple(tensors[f"mean.{i}"] for i in range(layers)),
                   variances=tuple(tensors[f"var.{i}"] for i in range(layers)),
                   counts=tensors["counts"])

    def matches(self, net: nn.Module, num_classes: int) -> bool:
        """Whether these statistics fit ``net``'s BatchNorm layers and ``num_classes``."""
        layers = bn_layers(net)
        return (len(layers) == len(self.means) and self.counts.shape == (num_classes,)
                and all(m.shape == (num_classes, layer.num_features)
                        for m, layer in zip(self.means, layers)))


@torch.no_grad()
def class_statistics(net: nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
                     num_classes: int) -> ClassStatistics:
    """Average, per class, each clip's BatchNorm-input statistics over ``batches`` of
    (normalised clips, labels); ``net`` runs in eval mode (running statistics, no dropout)."""
    was_training = net.training
    net.eval()
    layers = bn_layers(net)
    sums = [torch.zeros(num_classes, layer.num_features, dtype=torch.float64) for layer in layers]
    square = [torch.zeros_like(s) for s in sums]
    counts = torch.zeros(num_classes, dtype=torch.float64)
    try:
        with BNInputs(net) as hooks:
            for clips, labels in batches:
                net(clips)
                labels = labels.to("cpu", torch.int64)
                counts.index_add_(0, labels, torch.ones(len(labels), dtype=torch.float64))
                for layer, captured in enumerate(hooks.inputs):
                    mean, var = sample_statistics(captured.float())
                    sums[layer].index_add_(0, labels, mean.double().cpu())
                    square[layer].index_add_(0, labels, var.double().cpu())
    finally:
        net.train(was_training)
    if bool((counts == 0).any()):
        empty = int((counts == 0).nonzero()[0])
        raise ValueError(f"class {empty} has no clips to take statistics from")
    per_class = counts[:, None]
    return ClassStatistics(means=tuple((s / per_class).float() for s in sums),
                           variances=tuple((q / per_class).float() for q in square),
                           counts=counts.to(torch.int64))
