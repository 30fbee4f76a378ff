"""A Markdown reference page generated from the JSON schemas in ``protocol/schemas/``.

The schemas are the authority on the shape of result records, archive manifests and leaderboard
entries, and every field in them carries a ``description``. Readers should not have to parse JSON
Schema to learn what a field means, and a hand-written page would drift from the schemas; so the
page is rendered from them, and ``--check`` (run by the tests) refuses one that is stale::

    vdcbench schema-docs            # rewrite protocol/schemas/README.md
    vdcbench schema-docs --check    # exit 1 if it is out of date
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

from vdcbench.core.atomic_file import write_text_atomic
from vdcbench.protocol import PROTOCOL_DIR

SCHEMA_DIR = PROTOCOL_DIR / "schemas"
README_NAME = "README.md"

# (file stem, what a file of this kind is); the page follows this order.
SCHEMAS: tuple[tuple[str, str], ...] = (
    ("result", "one per evaluation seed, written by `vdcbench evaluate` under "
               "`<results-dir>/<dataset>/<track>/<method>-<archive sha[:12]>/<net>/"
               "<labels>-<variant>/seed<N>.json`."),
    ("manifest", "`manifest.json`, the first member of a `submission.tar` (the archive of a "
                 "condensed set): what the set is, who made it, and the hashes of its tensor "
                 "files."),
    ("entry", "written by `vdcbench submit` from the result records of one archive, under "
              "`submissions/<dataset>/<entry id>/entry.json`."),
)

# A key that is not a plain identifier (``videos.safetensors``) would make a dotted path ambiguous.
_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_]+$")
_NOT_REQUIRED_BY_KEY = "—"


class Row(NamedTuple):
    path: str
    type: str
    required: str
    description: str


def schema_markdown(schema: dict[str, Any]) -> str:
    """One schema as Markdown: a heading from its title, its description, a table of fields."""
    lines = [f"## {_text(schema.get('title', 'schema'))}", ""]
    if schema.get("description"):
        lines += [_text(schema["description"]), ""]
    lines += ["| field | type | required | description |", "| --- | --- | --- | --- |"]
    for row in schema_rows(schema):
        lines.append(f"| `{_cell(row.path)}` | {_cell(row.type)} | {row.required} | "
                     f"{_cell(_text(row.description))} |")
    return "\n".join(lines) + "\n"


def schemas_markdown(schema_dir: Path = SCHEMA_DIR) -> str:
    """The whole reference page: an introduction, then result, manifest and entry schemas."""
    schemas = [(stem, what, _load(Path(schema_dir) / f"{stem}.schema.json"))
               for stem, what in SCHEMAS]
    lines = [
        "# JSON schemas",
        "",
        "Generated from the `*.schema.json` files in this folder by "
        "`vdcbench schema-docs`; do not edit it by hand: change the schemas and run "
        "that command again (`--check` says whether this page is up to date).",
        "",
    ]
    for stem, what, schema in schemas:
        title = schema.get("title", stem)
        lines.append(f"- [{_text(title)}](#{_anchor(title)}) "
                     f"([`{stem}.schema.json`]({stem}.schema.json)): {_text(what)}")
    lines += [
        "",
        "Field paths: `a.b` is field `b` of object `a`; `a[].b` is field `b` of every element "
        "of array `a`; `a.*` is the value of any key of object `a`; `a[\"b.c\"]` is a key "
        "that holds a dot. Required `—`: keys of a free-form object, none required.",
    ]
    body = "\n".join(lines) + "\n"
    return body + "".join("\n" + schema_markdown(schema) for _, _, schema in schemas)


def schema_rows(schema: dict[str, Any]) -> list[Row]:
    """Every field of ``schema`` at every depth, parents before their children."""
    return list(_fields(schema, schema, ""))


def readme_is_current(schema_dir: Path = SCHEMA_DIR) -> bool:
    path = Path(schema_dir) / README_NAME
    try:
        return path.read_text(encoding="utf-8") == schemas_markdown(schema_dir)
    except FileNotFoundError:
        return False


def write_readme(schema_dir: Path = SCHEMA_DIR) -> Path:
    """Write the page next to the schemas, atomically: a reader never sees half a page."""
    path = Path(schema_dir) / README_NAME
    write_text_atomic(path, schemas_markdown(schema_dir))
    return path


# ------------------------------------------------------------------------------- walking
def _load(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as fh:
        return json.load(fh)


def _fields(node: dict[str, Any], root: dict[str, Any], prefix: str) -> Iterator[Row]:
    node = _resolve(node, root)
    required = set(node.get("required", ()))
    for name, child in node.get("properties", {}).items():
        path = _join(prefix, name)
        yield _row(path, child, root, "yes" if name in required else "no")
        yield from _children(child, root, path)
    extra = node.get("additionalProperties")
    if isinstance(extra, dict):
        path = _join(prefix, "*")
        yield _row(path, extra, root, _NOT_REQUIRED_BY_KEY)
        yield from _children(extra, root, path)


def _children(node: dict[str, Any], root: dict[str, Any], path: str) -> Iterator[Row]:
    node = _resolve(node, root)
    yield from _fields(node, root, path)
    items = node.get("items")
    if isinstance(items, dict):
        yield from _fields(items, root, f"{path}[]")


def _row(path: str, node: dict[str, Any], root: dict[str, Any], required: str) -> Row:
    resolved = _resolve(node, root)
    return Row(path, _type(resolved, root), required, resolved.get("description", ""))


def _join(prefix: str, name: str) -> str:
    if name != "*" and not _PLAIN_KEY.match(name):
        return f'{prefix}["{name}"]'
    return f"{prefix}.{name}" if prefix else name


def _resolve(node: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    """``node`` with its local ``$ref`` merged in; the node's own keywords (its description)
    win over the definition's."""
    seen: set[str] = set()
    while "$ref" in node:
        ref = node["$ref"]
        if not ref.startswith("#/") or ref in seen:
            raise ValueError(f"cannot follow $ref {ref!r}: only acyclic local references")
        seen.add(ref)
        target: Any = root
        for part in ref[2:].split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def _type(node: dict[str, Any], root: dict[str, Any]) -> str:
    if "const" in node:
        return f"`{json.dumps(node['const'])}`"
    if "enum" in node:
        return " | ".join(f"`{json.dumps(v)}`" for v in node["enum"])
    for combinator in ("oneOf", "anyOf"):
        if combinator in node:
            return " | ".join(_type(_resolve(branch, root), root) for branch in node[combinator])
    kinds = node.get("type", "any")
    text = " | ".join(kinds) if isinstance(kinds, list) else kinds
    items = node.get("items")
    if isinstance(items, dict):
        text += f" of {_type(_resolve(items, root), root)}"
    if "pattern" in node:
        text += f" `{node['pattern']}`"
    return text


# ------------------------------------------------------------------------------ Markdown
def _text(text: str) -> str:
    """Angle brackets outside code spans would be taken for HTML tags and vanish."""
    parts = text.split("`")
    for i in range(0, len(parts), 2):
        parts[i] = parts[i].replace("<", "&lt;").replace(">", "&gt;")
    return "`".join(parts)


def _cell(text: str) -> str:
    # A bare pipe ends a table cell, even inside a code span.
    return " ".join(text.split()).replace("|", "\\|")


def _anchor(title: str) -> str:
    """The fragment GitHub gives a heading."""
    return re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-")
