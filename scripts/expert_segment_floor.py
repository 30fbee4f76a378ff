"""How predictable an expert epoch is: the loss floor a trajectory-matching student faces.

    python scripts/expert_segment_floor.py --dataset synthetic --epochs 0,2
    python scripts/expert_segment_floor.py --dataset synthetic --videos-per-class 0 --batch-size 40

MTT and DATM score a student by ||θ_student − θ_target||² / ||θ_start − θ_target||², where
θ_target is an expert's parameters M epochs after θ_start. That target is one draw of SGD's
noise (minibatch order, crops, flips, temporal windows, dropout): training the same M epochs
from the same θ_start with other seeds lands elsewhere. This script measures how far, with the
loss the student is scored by:

- ``replay``: a replica trained from the expert's θ_start with another seed, scored against the
  expert's own θ_target (what real training clips under the expert's recipe would score);
- ``replica``: two replicas of a recipe (the expert set's, or one with the overrides below)
  scored against each other, the floor of a recipe whose experts were never trained.

Standing still scores 1. A value near or above 1 says the segment is mostly noise: no student
can follow it, and a normalised loss that falls far below 1 is out of reach (issue 14's DATM
criterion; README, "DATM's loss"). Seeds are fixed (``--seed``), so the figures repeat.
"""

from __future__ import annotations

import argparse
import dataclasses
import json

import torch

from vdcbench.data.splits import open_split
from vdcbench.methods.mtt import parameter_distance
from vdcbench.protocol.spec import load_protocol
from vdcbench.train import experts as E
from vdcbench.train.trainer import Trainer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="synthetic")
    parser.add_argument("--expert", type=int, default=0, help="whose start points are used")
    parser.add_argument("--epochs", default="0,2", help="start epochs, a comma list")
    parser.add_argument("--span", type=int, default=1, help="M: epochs from start to target")
    parser.add_argument("--replays", type=int, default=0,
                        help="replays of the expert's own recipe against its target (0: none)")
    parser.add_argument("--videos-per-class", type=int, default=None,
                        help="replica recipe: videos per class (0: all; default: the expert's)")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument("--no-augment", action="store_true")
    parser.add_argument("--no-dropout", action="store_true")
    parser.add_argument("--seed", type=int, default=2000, help="replica seeds: SEED, SEED + 1")
    parser.add_argument("--replay-seed", type=int, default=1000,
                        help="replay seeds: REPLAY_SEED, REPLAY_SEED + 1, ...")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    protocol = load_protocol()
    dataset = protocol.dataset(args.dataset)
    experts = E.expert_set(protocol, dataset)
    recipe = experts.recipe
    split = open_split(dataset, "train")
    own_source = E.expert_source(protocol, split, recipe)
    own_config = dataclasses.replace(E.expert_fit_config(protocol, dataset, recipe),
                                     epochs=args.span)

    changes = {k: v for k, v in (("videos_per_class", args.videos_per_class),
                                 ("batch_size", args.batch_size), ("lr", args.lr)) if v is not None}
    replica_recipe = dataclasses.replace(recipe, augment=not args.no_augment, **changes)
    replica_source = E.expert_source(protocol, split, replica_recipe)
    replica_config = dataclasses.replace(E.expert_fit_config(protocol, dataset, replica_recipe),
                                         epochs=args.span)

    def train_from(start: dict[str, torch.Tensor], config, source, seed: int,
                   dropout: bool) -> dict[str, torch.Tensor]:
        net = E.build_expert_net(protocol, dataset, recipe)
        if not dropout:
            for module in net.modules():
                if isinstance(module, torch.nn.Dropout):
                    module.p = 0.0
        with torch.no_grad():
            for name, p in net.named_parameters():
                p.copy_(start[name])
        trainer = Trainer(net, config, source, seed=seed, device="cpu")
        trainer.fit(None)
        return {name: p.detach().clone() for name, p in trainer.net.named_parameters()}

    rows = []
    for epoch in (int(e) for e in args.epochs.split(",")):
        start = experts.snapshot(args.expert, epoch)
        row = {"start_epoch": epoch, "span": args.span}
        if args.replays:
            target = experts.snapshot(args.expert, epoch + args.span)
            row["replay"] = [round(float(parameter_distance(
                train_from(start, own_config, own_source, args.replay_seed + r, True),
                start, target)), 3) for r in range(args.replays)]
        a = train_from(start, replica_config, replica_source, args.seed, not args.no_dropout)
        b = train_from(start, replica_config, replica_source, args.seed + 1, not args.no_dropout)
        row["replica"] = round(float(parameter_distance(b, start, a)), 3)
        rows.append(row)
        print(json.dumps(row), flush=True)
    print(json.dumps({"dataset": args.dataset, "expert_recipe": dataclasses.asdict(recipe),
                      "replica_recipe": dataclasses.asdict(replica_recipe),
                      "dropout": not args.no_dropout}))


if __name__ == "__main__":
    main()
