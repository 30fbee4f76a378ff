"""Typed boundaries: closed choices as enums that files still spell as plain strings, and frozen
dataclasses for the JSON documents vdcbench reads back (teacher sidecar, store manifest, archive
manifest), each round-tripping the bytes it was read from."""

from __future__ import annotations

import json

import pytest

from vdcbench.archive.condensed import MethodInfo, MethodKind
from vdcbench.core.errors import VdcError
from vdcbench.methods.base import Method


# --- method kind ---------------------------------------------------------------------------------

def test_method_kind_reads_and_serialises_as_its_string():
    kind = MethodKind.SELECTION
    assert kind == "selection" and f"{kind}" == str(kind) == "selection"
    assert f"{kind:>10}" == " selection"
    assert json.dumps({"kind": kind}) == '{"kind": "selection"}'
    assert json.dumps({"kind": kind}, indent=2, sort_keys=True) == '{\n  "kind": "selection"\n}'


def test_method_info_converts_a_string_kind_and_refuses_others():
    info = MethodInfo("x", "distillation")
    assert info.kind is MethodKind.DISTILLATION
    assert MethodInfo("x", MethodKind.SELECTION).kind is MethodKind.SELECTION
    with pytest.raises(VdcError, match="method kind must be one of selection, distillation, "
                                       "not 'magic'"):
        MethodInfo("x", "magic")


def test_a_plugin_spelling_its_kind_as_a_string_still_works():
    class Plugin(Method):
        name = "plugin"
        kind = "selection"
        description = "a plugin as CONTRIBUTING.md shows it"

        def condense(self, task):
            raise NotImplementedError

    assert Plugin.kind is MethodKind.SELECTION and Plugin().kind == "selection"
    with pytest.raises(VdcError, match="method 'bad' kind must be one of"):
        class Bad(Method):
            name = "bad"
            kind = "selecting"
            description = ""

            def condense(self, task):
                raise NotImplementedError


def test_built_in_methods_have_enum_kinds():
    from vdcbench.methods.registry import available_methods
    for cls in available_methods().values():
        assert isinstance(cls.kind, MethodKind)


# --- archive manifest ----------------------------------------------------------------------------

def test_committed_archive_manifests_round_trip_byte_identically():
    import tarfile
    from pathlib import Path

    from vdcbench.archive import Manifest, read_archive
    from vdcbench.archive.manifest import MANIFEST_MEMBER, encode_manifest

    archives = sorted((Path(__file__).resolve().parents[1] / "submissions" / "archives")
                      .glob("*.tar"))
    assert archives
    for path in archives:
        with tarfile.open(path) as tar:
            stored = tar.extractfile(MANIFEST_MEMBER).read()
        loaded = read_archive(path)
        assert isinstance(loaded.manifest, Manifest)
        assert loaded.manifest.method is loaded.condensed.method
        assert encode_manifest(loaded.manifest.to_dict(), subject=str(path)) == stored
        assert Manifest.from_dict(json.loads(stored)) == loaded.manifest
