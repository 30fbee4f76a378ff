"""How hard the protocol teacher finds each train video of a data set (its centred window).

Prints, per class, the median and the 10th/90th percentiles of the teacher's cross-entropy on
the true class and the share of videos below 0.05: where most videos of a class score near zero,
a lowest-loss selection (RDED) ranks near-ties, which bears on how much its choice can matter.

    python scripts/teacher_loss_profile.py [--dataset synthetic] [--net minic3d]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
import torch.nn.functional as F

from vdcbench.data.datasets import resolve_dataset
from vdcbench.data.splits import open_split
from vdcbench.methods.features import centred_clips
from vdcbench.protocol import LATEST_VERSION, load_protocol
from vdcbench.train.teacher import load_teacher
from vdcbench.train.augment import Normalize, to_unit_float


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="synthetic")
    parser.add_argument("--net", default="minic3d")
    args = parser.parse_args()
    protocol = load_protocol(LATEST_VERSION)
    dataset = resolve_dataset(protocol, args.dataset)
    split = open_split(dataset, "train")
    net = load_teacher(protocol, dataset, args.net).net.eval()
    normalize = Normalize(protocol.trainer.normalize_mean, protocol.trainer.normalize_std)
    losses = []
    with torch.no_grad():
        for first in range(0, len(split), 100):
            ids = np.arange(first, min(first + 100, len(split)))
            clips = centred_clips(split, ids, protocol, protocol.sampling.frames)
            logits = net(normalize(to_unit_float(clips)))
            losses.append(F.cross_entropy(logits, split.labels[ids].long(), reduction="none"))
    loss, labels = torch.cat(losses).numpy(), split.labels.numpy()
    print(f"{dataset.name}, {args.net} teacher, {len(loss)} train videos: "
          f"{(loss < 0.05).mean():.0%} below CE 0.05, {(loss < 1.0).mean():.0%} below 1.0")
    for label, name in enumerate(split.class_names):
        own = loss[labels == label]
        print(f"{name:>12}: median {np.median(own):.3f}, p10 {np.percentile(own, 10):.3f}, "
              f"p90 {np.percentile(own, 90):.3f}, below 0.05 {(own < 0.05).mean():.0%}")


if __name__ == "__main__":
    main()
