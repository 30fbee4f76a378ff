"""Batched clip augmentation, label strategies, losses, and the protocol trainer."""
