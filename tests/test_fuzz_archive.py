"""Property-based fuzzing of the archive reader (``vdcbench.archive.read_archive``).

Two families of inputs, both from small valid archives written here by ``write_archive``:

* byte level: bits flipped, bytes set, inserted and deleted, the file cut, in plain and gzip
  archives (half the edits near tar headers, the manifest and the safetensors headers);
* structure aware: tensors of other dtypes, shapes and values, safetensors headers edited
  (dtype, shape, offsets, extra tensors, header length, trailing bytes), manifests edited
  (fields removed, retyped, replaced by junk, huge numbers, NaN, Infinity), members dropped,
  repeated, renamed, reordered or added, all repacked into a well-formed tar (plain or gzip,
  ustar, GNU or pax) with the manifest's hashes and sizes usually recomputed, so that the
  edit reaches the checks behind them.

Property (see ``fuzz_strategies``): a valid read or one ``ArchiveError`` with its code and one
line, nothing written outside tmp, peak memory within 1 GiB (inputs are under 400 KB each, so
the bound is only crossed by a reader that allocates what a header claims).
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest
import safetensors.torch
import torch
from hypothesis import given
from hypothesis import strategies as st

from fuzz_strategies import (Outcome, apply_byte_mutations, byte_mutations, encode_json,
                             expect_valid_or_refused, fuzz_settings, json_mutation,
                             memory_bounded, no_writes_outside)
from vdcbench.archive import read_archive, write_archive
from vdcbench.archive.condensed import CondensedSet, MethodInfo
from vdcbench.protocol import load_protocol

PROTOCOL = load_protocol(1)
DATASET, TRACK, K, T, S = "synthetic", "ipc1-t8", 10, 8, 56
DTYPE_NAMES = {torch.uint8: "uint8", torch.float16: "float16", torch.float32: "float32",
               torch.int64: "int64", torch.int32: "int32", torch.float64: "float64",
               torch.bool: "bool", torch.bfloat16: "bfloat16", torch.int8: "int8"}
MAX_ELEMENTS = 100_000      # of any tensor a structure-aware input builds


def _smooth_videos(n: int, dtype: torch.dtype) -> torch.Tensor:
    # A ramp with a little noise: gzip seeds stay small (byte edits land in structure often)
    # but under the reader's 100x compression-ratio cap.
    g = torch.Generator().manual_seed(n)
    ramp = torch.linspace(0, 200, S).reshape(1, 1, 1, 1, S).expand(n, 3, T, S, S)
    pixels = (ramp + torch.randint(0, 32, (n, 3, T, S, S), generator=g)).round()
    return pixels.to(torch.uint8) if dtype == torch.uint8 else (pixels / 255).to(dtype)


@functools.lru_cache(maxsize=1)
def _base_sets() -> dict[str, CondensedSet]:
    method = MethodInfo("fuzz", "selection", config={"k": 1}, seed=0, wall_seconds=1.5,
                        device="cpu")
    soft = torch.softmax(torch.arange(K, dtype=torch.float32).reshape(1, K), dim=1)
    return {
        "u8-hard": CondensedSet(videos=_smooth_videos(1, torch.uint8),
                                labels=torch.tensor([3]), dataset=DATASET, track=TRACK,
                                method=method),
        "f16-soft": CondensedSet(videos=_smooth_videos(1, torch.float16),
                                 labels=torch.tensor([0]), soft_labels=soft,
                                 label_strategy="soft", dataset=DATASET, track=TRACK,
                                 method=method),
        "u8-multi-sl-2": CondensedSet(videos=_smooth_videos(2, torch.uint8),
                                      labels=torch.tensor([0, 9]), label_strategy="multi-sl",
                                      dataset=DATASET, track=TRACK, method=method),
    }


class Seed:
    """A valid archive: its file bytes, its members, and where its structure lies."""

    def __init__(self, name: str, data: bytes, gz: bool):
        self.name, self.data, self.gz = name, data, gz
        raw = gzip.decompress(data) if gz else data
        self.members: dict[str, bytes] = {}
        hot, headers = {0}, set()
        with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tar:
            for info in tar:
                self.members[info.name] = tar.extractfile(info).read()
                hot.update({info.offset, info.offset_data})
                # A pax member has its extended header block(s) before its own header.
                headers.update({info.offset, info.offset_data - 512})
        self.headers = tuple(sorted(h for h in headers if h >= 0))
        if gz:
            hot = {0, 10, len(data) - 8, len(data) - 4}
        self.hot = tuple(sorted(hot))
        self.manifest = json.loads(self.members["manifest.json"])


@pytest.fixture(scope="session")
def seeds(tmp_path_factory) -> dict[str, Seed]:
    folder = tmp_path_factory.mktemp("fuzz-seeds")
    out = {}
    for name, cs in _base_sets().items():
        for suffix in (".tar", ".tar.gz"):
            path = folder / f"{name}{suffix}"
            write_archive(cs, path, protocol=PROTOCOL)
            assert read_archive(path).condensed.num_instances >= 1   # the seeds are valid
            out[f"{name}{suffix}"] = Seed(name, path.read_bytes(), suffix == ".tar.gz")
    return out


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz-archive")


def _read(path: Path, outcome: Outcome, protocol=None):
    def call():
        loaded = read_archive(path, protocol=protocol)
        # What a valid read promises its callers.
        cs = loaded.condensed
        assert cs.videos.ndim == 5 and cs.num_instances >= 1
        assert cs.labels.shape == (cs.num_instances,)
        assert len(loaded.sha256) == 64
        return loaded
    with no_writes_outside(path.parent), memory_bounded():
        return expect_valid_or_refused(call, outcome)


# ------------------------------------------------------------------------------ byte level
SEED_NAMES = [f"{b}{s}" for b in _base_sets() for s in (".tar", ".tar.gz")]
BYTES_OUTCOME = Outcome("archive bytes")


@st.composite
def byte_level_case(draw, seeds: dict[str, Seed]):
    seed = seeds[draw(st.sampled_from(SEED_NAMES))]
    edits = draw(byte_mutations(len(seed.data), seed.hot))
    blob = apply_byte_mutations(seed.data, edits)
    if not seed.gz and draw(st.booleans()):
        # Header checksums recomputed, so an edited size, type or name reaches the checks
        # behind tarfile's own.
        blob = _fix_checksums(blob, seed.headers)
    return seed.name, blob


def _fix_checksums(blob: bytes, headers: tuple[int, ...]) -> bytes:
    out = bytearray(blob)
    for offset in headers:
        block = out[offset:offset + 512]
        if len(block) < 512 or not any(block):
            continue
        block[148:156] = b" " * 8
        out[offset + 148:offset + 156] = b"%06o\0 " % (sum(block) & 0o777777)
    return bytes(out)


@pytest.mark.slow   # 44 s on a loaded core (3 Dec); CI runs it in its `pytest -m slow` step
@fuzz_settings(ci_examples=1200)
@given(data=st.data())
def test_fuzz_archive_bytes(data, seeds, workdir):
    name, blob = data.draw(byte_level_case(seeds))
    path = workdir / "bytes.tar"
    path.write_bytes(blob)
    _read(path, BYTES_OUTCOME)


# ------------------------------------------------------------------------- structure aware
STRUCT_OUTCOME = Outcome("archive structure")
_SHAPE_DIMS = {
    "videos": [st.sampled_from([0, 1, 2, 11]), st.sampled_from([1, 3, 4]),
               st.sampled_from([0, 1, 7, 8, 9]), st.sampled_from([0, 1, 55, 56, 57]),
               st.sampled_from([0, 1, 55, 56, 57])],
    "labels": [st.sampled_from([0, 1, 2, 3])],
    "soft_labels": [st.sampled_from([0, 1, 2]), st.sampled_from([0, 1, 9, 10, 11])],
}
_SPECIAL = [float("nan"), float("inf"), float("-inf"), 255.0, -1.0, 1.5, 0.0, 1.0, 1e30]
_LABELS = [-1, 0, 9, 10, 2 ** 62, -(2 ** 63)]


@st.composite
def tensor_edit(draw, group: dict[str, torch.Tensor]) -> None:
    """Change one tensor of ``group`` in place: its dtype, shape, or some values."""
    name = draw(st.sampled_from(sorted(group)))
    tensor = group[name]
    kind = draw(st.sampled_from(["dtype", "shape", "values", "values", "ndim"]))
    if kind == "dtype":
        group[name] = tensor.to(draw(st.sampled_from(list(DTYPE_NAMES))))
    elif kind in ("shape", "ndim"):
        dims = _SHAPE_DIMS.get(name, [st.integers(0, 4)])
        shape = [draw(d) for d in dims]
        if kind == "ndim":
            shape = shape[:-1] if draw(st.booleans()) else shape + [draw(st.integers(0, 3))]
        numel = 1
        for d in shape:
            numel *= d
        if numel <= MAX_ELEMENTS:
            group[name] = torch.zeros(shape, dtype=tensor.dtype)
    elif tensor.numel():
        flat = tensor.reshape(-1).clone()
        index = draw(st.integers(0, flat.numel() - 1))
        if tensor.is_floating_point():
            flat[index:index + draw(st.integers(1, 64))] = draw(st.sampled_from(_SPECIAL))
        elif tensor.dtype == torch.int64:
            flat[index] = draw(st.sampled_from(_LABELS))
        elif tensor.dtype == torch.uint8:
            flat[index] = draw(st.integers(0, 255))
        group[name] = flat.reshape(tensor.shape)


def _split_safetensors(data: bytes) -> tuple[dict, bytes]:
    n = int.from_bytes(data[:8], "little")
    return json.loads(data[8:8 + n]), data[8 + n:]


@st.composite
def safetensors_edit(draw, data: bytes) -> bytes:
    """The bytes of a safetensors file with its header or framing edited."""
    header, payload = _split_safetensors(data)
    kind = draw(st.sampled_from(["header", "header", "header", "trailing", "cut", "length",
                                 "padding", "extra-tensor", "duplicate-key"]))
    if kind == "header":
        header = draw(json_mutation(header))
    elif kind == "extra-tensor":
        name = draw(st.sampled_from(["extra", "soft_labels", "videos", "labels", "__metadata__",
                                     ""]))
        begin = len(payload)
        size = draw(st.sampled_from([0, 1, 4, 8, 40]))
        header[name] = {"dtype": draw(st.sampled_from(["U8", "F32", "I64", "F64", "BF16"])),
                        "shape": [size // 8 if size >= 8 else size],
                        "data_offsets": [begin, begin + size]}
        payload += b"\x00" * size
    text = encode_json(header, indent=None,
                       duplicate_key="videos" if kind == "duplicate-key" else None)
    if kind == "padding":
        text += b" " * draw(st.integers(1, 16))
    length = len(text)
    if kind == "length":
        length = draw(st.sampled_from([0, 1, length - 1, length + 1, length + 8, 2 ** 16,
                                       2 ** 32, 2 ** 63, 2 ** 64 - 1]))
    if kind == "trailing":
        payload += draw(st.binary(min_size=1, max_size=64))
    if kind == "cut" and payload:
        payload = payload[:draw(st.integers(0, len(payload) - 1))]
    return length.to_bytes(8, "little") + text + payload


def _tensor_entry(tensor: torch.Tensor) -> dict:
    return {"dtype": DTYPE_NAMES.get(tensor.dtype, str(tensor.dtype)),
            "shape": list(tensor.shape)}


_SAFETENSORS_TO_MANIFEST = {"U8": "uint8", "F16": "float16", "F32": "float32", "I64": "int64"}


def _declared_from_header(data: bytes) -> dict | None:
    try:
        header, _ = _split_safetensors(data)
        return {name: {"dtype": _SAFETENSORS_TO_MANIFEST.get(e["dtype"], e["dtype"]),
                       "shape": e["shape"]}
                for name, e in header.items() if name != "__metadata__"}
    except Exception:
        return None


@st.composite
def structure_case(draw, seeds: dict[str, Seed]) -> tuple[bytes, bool]:
    base = _base_sets()[draw(st.sampled_from(sorted(_base_sets())))]
    videos = {"videos": base.videos.clone()}
    labels = {"labels": base.labels.clone()}
    if base.soft_labels is not None:
        labels["soft_labels"] = base.soft_labels.clone()
    strategy = base.label_strategy
    # 1. tensors: dtype, shape, values; soft labels added or dropped.
    for _ in range(draw(st.integers(0, 2))):
        draw(tensor_edit(draw(st.sampled_from([videos, labels]))))
    if draw(st.integers(0, 9)) == 0:
        if "soft_labels" in labels:
            del labels["soft_labels"]
        else:
            labels["soft_labels"] = torch.full((int(base.labels.numel()), K), 0.1)
    if draw(st.integers(0, 9)) == 0:
        strategy = draw(st.sampled_from(["hard", "soft", "multi-sl", "bogus", ""]))
    members = {"videos.safetensors": safetensors.torch.save(videos),
               "labels.safetensors": safetensors.torch.save(labels)}
    declared = {name: _tensor_entry(t) for name, t in {**videos, **labels}.items()}
    # 2. safetensors framing and headers; the manifest then usually declares what the header
    # says, so that the edit reaches the tensor checks behind the declaration.
    if draw(st.integers(0, 2)) == 0:
        member = draw(st.sampled_from(sorted(members)))
        members[member] = draw(safetensors_edit(members[member]))
        if draw(st.booleans()) and (header := _declared_from_header(members[member])):
            declared = {k: v for k, v in declared.items()
                        if (k == "videos") != (member == "videos.safetensors")}
            declared.update(header)
    # 3. the manifest: consistent with the members (usually), then edited.
    manifest = json.loads(json.dumps(seeds[f"{sorted(_base_sets())[0]}.tar"].manifest))
    manifest["label_strategy"] = strategy
    manifest["tensors"] = declared
    if draw(st.integers(0, 9)) > 0:
        manifest["members"] = {k: {"sha256": hashlib.sha256(v).hexdigest(), "bytes": len(v)}
                               for k, v in members.items()}
    for _ in range(draw(st.sampled_from([0, 0, 0, 0, 1, 1, 2, 3]))):
        manifest = draw(json_mutation(manifest))
    entries = [("manifest.json", encode_json(
        manifest, indent=draw(st.sampled_from([2, None])),
        duplicate_key=draw(st.sampled_from([None] * 9 + ["dataset"]))))]
    entries += sorted(members.items())
    # 4. the members of the tar.
    kind = draw(st.sampled_from(["none"] * 6 + ["drop", "duplicate", "rename", "reorder",
                                                "extra", "special"]))
    info_kind = {}
    if kind == "drop":
        entries.pop(draw(st.integers(0, len(entries) - 1)))
    elif kind == "duplicate":
        entries.append(entries[draw(st.integers(0, len(entries) - 1))])
    elif kind == "rename":
        i = draw(st.integers(0, len(entries) - 1))
        entries[i] = (draw(st.sampled_from(["./" + entries[i][0], entries[i][0].upper(),
                                            "dir/" + entries[i][0], "/" + entries[i][0],
                                            "../" + entries[i][0], entries[i][0] + "\x00x",
                                            "C:" + entries[i][0]])), entries[i][1])
    elif kind == "reorder":
        entries = draw(st.permutations(entries))
    elif kind == "extra":
        entries.insert(draw(st.integers(0, len(entries))),
                       (draw(st.sampled_from(["extra.bin", "README", ".hidden", "a/b"])),
                        draw(st.binary(max_size=64))))
    elif kind == "special":
        i = draw(st.integers(0, len(entries) - 1))
        info_kind[i] = draw(st.sampled_from([tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.DIRTYPE,
                                             tarfile.FIFOTYPE, tarfile.CHRTYPE,
                                             tarfile.CONTTYPE, b"Z"]))
    fmt = draw(st.sampled_from([tarfile.PAX_FORMAT, tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT]))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for i, (name, data) in enumerate(entries):
            info = tarfile.TarInfo(name)
            info.type = info_kind.get(i, tarfile.REGTYPE)
            if info.type in (tarfile.SYMTYPE, tarfile.LNKTYPE):
                info.linkname = "manifest.json"
            regular = info.type in (tarfile.REGTYPE, tarfile.CONTTYPE, b"Z")
            info.size = len(data) if regular else 0
            tar.addfile(info, io.BytesIO(data) if regular else None)
    blob = buf.getvalue()
    gz = draw(st.booleans())
    return (gzip.compress(blob, mtime=0) if gz else blob), gz


@fuzz_settings(ci_examples=500)
@given(data=st.data())
def test_fuzz_archive_structure(data, seeds, workdir):
    try:
        blob, gz = data.draw(structure_case(seeds))
    except ValueError:
        # tarfile refuses to write some names (NUL, too long for ustar): not an input.
        from hypothesis import reject
        reject()
    path = workdir / ("structure.tar.gz" if gz else "structure.tar")
    path.write_bytes(blob)
    protocol = PROTOCOL if data.draw(st.booleans()) else None
    _read(path, STRUCT_OUTCOME, protocol=protocol)


def teardown_module(module):
    for outcome in (BYTES_OUTCOME, STRUCT_OUTCOME):
        if outcome.total:
            print("\n" + outcome.summary())
