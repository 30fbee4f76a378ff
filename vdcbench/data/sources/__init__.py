"""Source layouts: each reads one layout people download and lists its videos, never decoding.

``list_source(name, root, **options)`` returns a :class:`~vdcbench.data.listing.SourceListing`
with entries sorted by key and labels in the protocol's class order. The layouts and their
options (each module's docstring says more):

=============  ==============================================================================
``ucf101``     ``UCF-101/`` + ``ucfTrainTestlist/``, protocol split
``hmdb51``     class folders + ``*_test_split<N>.txt``; ``splits_dir``
``kinetics400`` videos + annotation CSVs; ``annotations``
``ssv2``       ``20bn-something-something-v2/`` + label JSONs; ``labels_dir``
``miniucf``    the protocol's 50 classes from a UCF101 root
``folder``     ``<root>/<class>/<video>``; ``split_file`` or ``seed``, ``val_fraction``,
               ``group``; ``clip_seconds``
``rawframes``  mmaction frame folders + lists; ``train_list``, ``val_list``, ``classes``,
               ``frames_dir``, ``dataset``
=============  ==============================================================================
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from pathlib import Path
from types import MappingProxyType

from vdcbench.data.listing import SourceListing
from vdcbench.data.sources.folder import list_folder
from vdcbench.data.sources.hmdb51 import list_hmdb51
from vdcbench.data.sources.kinetics400 import list_kinetics400
from vdcbench.data.sources.miniucf import list_miniucf
from vdcbench.data.sources.rawframes import list_rawframes
from vdcbench.data.sources.ssv2 import list_ssv2
from vdcbench.data.sources.ucf101 import list_ucf101
from vdcbench.core.errors import UnknownNameError, VdcError
from vdcbench.protocol import Protocol, load_protocol

SOURCES: MappingProxyType[str, Callable[..., SourceListing]] = MappingProxyType({
    "ucf101": list_ucf101,
    "hmdb51": list_hmdb51,
    "kinetics400": list_kinetics400,
    "ssv2": list_ssv2,
    "miniucf": list_miniucf,
    "folder": list_folder,
    "rawframes": list_rawframes,
})


def source_names() -> tuple[str, ...]:
    return tuple(SOURCES)


def source_options(name: str) -> tuple[str, ...]:
    """The options ``list_source`` accepts for layout ``name``."""
    if name not in SOURCES:
        raise UnknownNameError("source layout", name, SOURCES)
    params = inspect.signature(SOURCES[name]).parameters
    return tuple(p for p, v in params.items()
                 if v.kind is inspect.Parameter.KEYWORD_ONLY and p != "protocol")


def list_source(name: str, root: str | os.PathLike[str], *, protocol: Protocol | None = None,
                **options) -> SourceListing:
    """List the videos of layout ``name`` under ``root``; options as the layout's module says.

    Options that are None are treated as not given, so a CLI may pass its unset flags through.
    """
    if name not in SOURCES:
        raise UnknownNameError("source layout", name, SOURCES)
    given = {k: v for k, v in options.items() if v is not None}
    allowed = source_options(name)
    for key in given:
        if key not in allowed:
            hint = f"; it takes {', '.join(allowed)}" if allowed else "; it takes none"
            raise VdcError(f"source {name!r} has no option {key!r}{hint}")
    return SOURCES[name](Path(root), protocol=protocol or load_protocol(), **given)


__all__ = ["SOURCES", "list_source", "source_names", "source_options"]
