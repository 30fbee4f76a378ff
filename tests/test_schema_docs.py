"""The JSON schemas document every field, and protocol/schemas/README.md is rendered from them."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from click.testing import CliRunner

from vdcbench.cli import main
from vdcbench.protocol import schema_docs
from vdcbench.protocol.schema_docs import (README_NAME, SCHEMA_DIR, readme_is_current, schema_markdown,
                                  schema_rows, schemas_markdown, write_readme)

SCHEMA_NAMES = ("result", "manifest", "entry")
# The constant format tag and version of each file say what it is; nothing to describe.
CONSTANT_FIELDS = ("format", "format_version")


def load(name: str) -> dict[str, Any]:
    return json.loads((SCHEMA_DIR / f"{name}.schema.json").read_text())


def undocumented(schema: dict[str, Any], where: str = "", top: bool = True) -> Iterator[str]:
    """JSON pointers of the fields without a description, at every depth: properties, array
    items' properties, value schemas of free-form objects, and the definitions they refer to."""
    for name, sub in schema.get("properties", {}).items():
        path = f"{where}/properties/{name}"
        if not (top and name in CONSTANT_FIELDS) and not str(sub.get("description", "")).strip():
            yield path
        yield from undocumented(sub, path, top=False)
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        if not str(extra.get("description", "")).strip():
            yield f"{where}/additionalProperties"
        yield from undocumented(extra, f"{where}/additionalProperties", top=False)
    for keyword in ("items", "not", "if", "then", "else"):
        if isinstance(schema.get(keyword), dict):
            yield from undocumented(schema[keyword], f"{where}/{keyword}", top=False)
    for keyword in ("oneOf", "anyOf", "allOf", "prefixItems"):
        for i, sub in enumerate(schema.get(keyword, ())):
            yield from undocumented(sub, f"{where}/{keyword}/{i}", top=False)
    for keyword in ("$defs", "definitions"):
        for name, sub in schema.get(keyword, {}).items():
            yield from undocumented(sub, f"{where}/{keyword}/{name}", top=False)


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_every_field_has_a_description(name):
    schema = load(name)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert list(undocumented(schema)) == []


def test_the_walker_finds_an_undocumented_field_at_any_depth():
    entry = load("entry")
    seed = entry["properties"]["results"]["items"]["properties"]["seeds"]["items"]
    seed["properties"]["threads"] = {"type": "integer"}
    manifest = load("manifest")
    manifest["$defs"]["member"]["properties"]["mode"] = {"type": "integer"}
    result = load("result")
    result["properties"]["by_epoch_top1"]["additionalProperties"].pop("description")
    result["properties"]["format_version"]["description"] = ""   # exempt: still fine
    assert list(undocumented(entry)) == [
        "/properties/results/items/properties/seeds/items/properties/threads"]
    assert list(undocumented(manifest)) == ["/$defs/member/properties/mode"]
    assert list(undocumented(result)) == ["/properties/by_epoch_top1/additionalProperties"]


def test_readme_is_up_to_date():
    readme = (SCHEMA_DIR / README_NAME).read_text(encoding="utf-8")
    assert readme == schemas_markdown(SCHEMA_DIR), \
        "protocol/schemas/README.md is stale: run vdcbench schema-docs"


def test_check_flag_reports_a_current_page():
    run = CliRunner().invoke(main, ["schema-docs", "--check"])
    assert run.exit_code == 0, run.output
    assert run.output == ""


def test_check_flag_refuses_a_stale_page_in_one_line(monkeypatch):
    monkeypatch.setattr(schema_docs, "readme_is_current", lambda: False)
    monkeypatch.setattr(schema_docs, "write_readme", lambda: pytest.fail("--check wrote the page"))
    run = CliRunner().invoke(main, ["schema-docs", "--check"])
    assert run.exit_code == 1
    assert run.stdout == "" and len(run.stderr.splitlines()) == 1
    assert "out of date" in run.stderr and "vdcbench schema-docs" in run.stderr


def test_command_writes_the_page(monkeypatch, tmp_path):
    monkeypatch.setattr(schema_docs, "write_readme", lambda: tmp_path / README_NAME)
    run = CliRunner().invoke(main, ["schema-docs"])
    assert run.exit_code == 0 and run.output == f"wrote {tmp_path / README_NAME}\n"


def test_a_stale_page_is_found_and_rewritten(tmp_path: Path):
    for name in SCHEMA_NAMES:
        (tmp_path / f"{name}.schema.json").write_text(json.dumps(load(name)))
    assert not readme_is_current(tmp_path)          # no page yet
    (tmp_path / README_NAME).write_text("# old\n")
    assert not readme_is_current(tmp_path)
    assert write_readme(tmp_path) == tmp_path / README_NAME
    assert readme_is_current(tmp_path)
    assert [p.name for p in tmp_path.iterdir() if p.suffix == ".tmp"] == []


def test_rows_name_nested_paths():
    paths = {name: {row.path: row for row in schema_rows(load(name))} for name in SCHEMA_NAMES}
    result, manifest, entry = (paths[name] for name in SCHEMA_NAMES)
    assert result["key.archive_sha256"].required == "yes"
    assert "^[0-9a-f]{64}$" in result["key.archive_sha256"].type
    assert result["method.config"].required == "no"
    assert result["versions.*"].type == "string"
    assert result["by_epoch_top1.*"].description
    assert entry["results[].seeds[].top1"].description.startswith("final-epoch top-1 %")
    assert entry["results[].seeds[].versions.*"].required == "—"
    assert entry["teacher_sha256"].type == "string `^[0-9a-f]{64}$` | null"
    # A field defined once in $defs is listed, with its own description, wherever it is used.
    assert manifest['members["videos.safetensors"].sha256'].description
    assert manifest["tensors.soft_labels"].required == "no"
    assert manifest["tensors.soft_labels.shape"].type == "array of integer"


def test_markdown_of_one_schema():
    schema = load("entry")
    text = schema_markdown(schema)
    assert text.startswith("## vdcbench leaderboard entry\n")
    assert "| `results[].seeds[].top1` | number | yes | final-epoch top-1 %" in text
    # Angle brackets outside code would be read as HTML tags and vanish.
    assert "submissions/&lt;dataset&gt;/&lt;id&gt;/entry.json" in text
    # A pipe inside a cell is escaped, or it would split the row.
    assert '`"selection"` \\| `"distillation"`' in text
    schema = copy.deepcopy(schema)
    schema["properties"]["track"]["description"] = "a | b"
    assert "a \\| b" in schema_markdown(schema)
