"""Losses of the protocol's label strategies and evaluation variants, on raw logits."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def mse_gt(student: torch.Tensor, teacher: torch.Tensor, labels: torch.Tensor,
           gamma: float) -> torch.Tensor:
    """MSE-GT: MSE between raw logits (mean over B x K) + gamma x cross-entropy on the hard label."""
    return F.mse_loss(student, teacher) + gamma * F.cross_entropy(student, labels)


def kl_divergence(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """The study's KL variant: batch-mean KL(teacher || student) at temperature T, no T^2 factor."""
    return F.kl_div(F.log_softmax(student / temperature, dim=1),
                    F.softmax(teacher / temperature, dim=1), reduction="batchmean")
