"""Two submission archives side by side: what their manifests declare, and whether their members
hold the same bytes (``vdcbench diff A.tar B.tar``).

Both are read and verified first (``read_archive``), so every member hash shown is one the reader
checked against the bytes. Two archive files can differ while holding the same condensed set (a
gzip and a plain tar of it): the members' hashes decide "same set", not the files'.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from vdcbench.archive.manifest import Manifest
from vdcbench.archive.reader import read_archive

# Fields that put two archives in different leaderboard cells: results on one say nothing about
# the other. Everything else (method, settings, seed, content) is what a comparison is about.
CELL_FIELDS = ("protocol", "data set", "track", "label strategy")


@dataclass(frozen=True)
class ArchiveField:
    field: str
    a: str
    b: str

    @property
    def same(self) -> bool:
        return self.a == self.b

    @property
    def blocking(self) -> bool:
        """Different, and in a field that makes the two archives compete in different cells."""
        return not self.same and self.field in CELL_FIELDS


@dataclass(frozen=True)
class ArchiveComparison:
    a_sha256: str
    b_sha256: str
    fields: tuple[ArchiveField, ...]
    member_names: tuple[str, ...]     # the tensor members, both archives' together

    @property
    def identical_files(self) -> bool:
        return self.a_sha256 == self.b_sha256

    @property
    def same_content(self) -> bool:
        """Every tensor member holds the same bytes in both (the same condensed set)."""
        return all(f.same for f in self.fields if f.field in self.member_names)

    @property
    def blocking(self) -> tuple[str, ...]:
        return tuple(f.field for f in self.fields if f.blocking)

    @property
    def same_cell(self) -> bool:
        return not self.blocking


def _rows(manifest: Manifest) -> dict[str, str]:
    m = manifest.method
    rows = {
        "protocol": f"v{manifest.protocol_version} {manifest.protocol_sha256[:12]}",
        "data set": manifest.dataset,
        "track": manifest.track,
        "label strategy": manifest.label_strategy,
        "classes": str(manifest.num_classes),
        "method": f"{m.name} ({m.kind.value})",
        "method settings": json.dumps(dict(m.config), sort_keys=True, allow_nan=False),
        "condensation seed": "unknown" if m.seed is None else str(m.seed),
        "external data": ", ".join(manifest.external_data) or "none",
        "external weights": ", ".join(manifest.external_weights) or "none",
    }
    for name, spec in sorted(manifest.tensors.items()):
        rows[f"{name} tensor"] = f"{spec.dtype} {'x'.join(map(str, spec.shape))}"
    for name, member in sorted(manifest.members.items()):
        rows[name] = f"sha256 {member.sha256[:12]}, {member.bytes:,} bytes"
    for package, version in sorted(manifest.created_with.items()):
        rows[f"written with {package}"] = str(version)
    return rows


def compare_archives(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> ArchiveComparison:
    """Read and verify both archives, then compare their manifests field by field."""
    first, second = read_archive(a), read_archive(b)
    rows_a, rows_b = _rows(first.manifest), _rows(second.manifest)
    names = list(rows_a) + [n for n in rows_b if n not in rows_a]
    members = sorted(set(first.manifest.members) | set(second.manifest.members))
    fields = tuple(ArchiveField(n, rows_a.get(n, "absent"), rows_b.get(n, "absent"))
                   for n in names)
    fields += (ArchiveField("archive file", f"sha256 {first.sha256[:12]}",
                            f"sha256 {second.sha256[:12]}"),)
    return ArchiveComparison(a_sha256=first.sha256, b_sha256=second.sha256, fields=fields,
                             member_names=tuple(members))
