"""Evaluation and condensation networks, built by protocol name."""

from vdcbench.models.registry import build_net, net_names

__all__ = ["build_net", "net_names"]
