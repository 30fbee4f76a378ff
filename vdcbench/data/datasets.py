"""Which data set a name means: a protocol data set, or a user's prepared collection.

The protocol declares one ``folder`` data set for any ``<root>/<class>/<video>`` collection,
with ``num_classes = 0``: its classes and split come from the collection. A prepared collection
is known by its store's name (``gt-actions``), and every command that takes ``--dataset`` (and
every archive whose manifest names a data set) resolves that name here, to the protocol's
``folder`` data set carrying the store's name, classes and class count.
"""

from __future__ import annotations

import dataclasses
import os

from vdcbench.data.store import COLLECTION_DATASET, MANIFEST_FILE, find_store, stores_root
from vdcbench.core.errors import UnknownNameError, VdcError
from vdcbench.core.json_values import parse_json_strict
from vdcbench.protocol import Dataset, Protocol


def prepared_collections() -> list[str]:
    """Names of the prepared collection stores in the cache (for 'did you mean' hints)."""
    root = stores_root()
    if not root.is_dir():
        return []
    names = {p.name for p in root.iterdir() if (p / MANIFEST_FILE).is_file()}
    names |= {p.stem for p in root.glob("*.link")}
    return sorted(names)


def collection_dataset(protocol: Protocol, name: str, classes: tuple[str, ...]) -> Dataset:
    """The protocol's ``folder`` data set as the collection ``name`` with ``classes``."""
    base = protocol.dataset(COLLECTION_DATASET)
    return dataclasses.replace(base, name=name, classes=tuple(classes), num_classes=len(classes))


def stores_looked_in() -> str:
    """Where a prepared store's name was looked for, and what moves it: a name that is not found
    is often a store prepared under another cache root."""
    if os.environ.get("VDCBENCH_CACHE"):
        return f"looked for a prepared store in {stores_root()}, under $VDCBENCH_CACHE"
    return (f"looked for a prepared store in {stores_root()}; set VDCBENCH_CACHE to the cache "
            f"root it was prepared under")


def resolve_dataset(protocol: Protocol, name: str) -> Dataset:
    """The data set ``name`` means under ``protocol``.

    A protocol data set with a fixed class count is itself. Otherwise a prepared store of that
    name, holding a collection, gives ``folder`` with the store's name and classes; the bare
    ``folder`` (no such store) stays the protocol's, with no class count.
    """
    declared = protocol.datasets.get(name)
    if declared is not None and declared.num_classes > 0:
        return declared
    path = find_store(name)
    if path is None:
        if declared is not None:
            return declared
        raise UnknownNameError("data set", name, [*protocol.datasets, *prepared_collections()],
                               note=f" ({stores_looked_in()})")
    try:
        manifest = parse_json_strict((path / MANIFEST_FILE).read_bytes())
        dataset, classes = manifest["dataset"], tuple(manifest["classes"])
    except (OSError, ValueError, KeyError, TypeError) as exc:   # ValueError: NaN, 1e400 too
        raise VdcError(f"the store of {name!r} at {path} has an unreadable manifest ({exc}); "
                       "prepare it again") from None
    if dataset != COLLECTION_DATASET:
        raise VdcError(f"the store {name!r} at {path} holds the {dataset!r} data set; use "
                       f"--dataset {dataset}")
    return collection_dataset(protocol, name, classes)
