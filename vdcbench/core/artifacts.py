"""A keyed store a method uses for checkpoints, caches and resume state; the harness owns the paths."""

from __future__ import annotations

import re
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from vdcbench.core.atomic_file import atomic_path, write_bytes_atomic
from vdcbench.core.errors import VdcError

_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


class ArtifactStore:
    """Atomic, keyed bytes and tensor storage under a directory chosen by the harness."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def _path(self, key: str, suffix: str) -> Path:
        if not _KEY.match(key):
            raise VdcError(f"artifact key {key!r} must be letters, digits, '.', '_' or '-'")
        return self.root / f"{key}{suffix}"

    def has(self, key: str) -> bool:
        return self._path(key, ".bin").is_file() or self._path(key, ".safetensors").is_file()

    def delete(self, key: str) -> None:
        for suffix in (".bin", ".safetensors"):
            self._path(key, suffix).unlink(missing_ok=True)

    def put_bytes(self, key: str, data: bytes) -> None:
        write_bytes_atomic(self._path(key, ".bin"), data)

    def get_bytes(self, key: str) -> bytes | None:
        path = self._path(key, ".bin")
        return path.read_bytes() if path.is_file() else None

    def put_tensors(self, key: str, tensors: dict[str, torch.Tensor]) -> None:
        cpu = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
        with atomic_path(self._path(key, ".safetensors")) as tmp:
            save_file(cpu, str(tmp))

    def get_tensors(self, key: str) -> dict[str, torch.Tensor] | None:
        path = self._path(key, ".safetensors")
        return load_file(str(path)) if path.is_file() else None
