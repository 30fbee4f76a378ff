"""What a method's ``--set`` keys are: name, type, default and the comment that explains each.

A method's ``Config`` is a frozen dataclass whose fields carry their explanation as source
comments (on the field's line, or on full-line comments just above it), which is how plugin
authors naturally write them. ``vdcbench methods NAME`` reads them from there, so the help and
the code cannot drift apart. A field may instead say it in ``field(metadata={"help": ...})``,
which wins; where the source is not available (a zip import), the help is empty.
"""

from __future__ import annotations

import dataclasses
import inspect
import io
import json
import textwrap
import tokenize
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Setting:
    name: str
    type: str
    default: object
    help: str


def _source_comments(config_cls: type) -> dict[str, str]:
    """Field name -> its comment text (full-line comments above, then the trailing one)."""
    try:
        source = textwrap.dedent(inspect.getsource(config_cls))
    except (OSError, TypeError):
        return {}
    comments: dict[str, str] = {}
    pending: list[str] = []          # full-line comments waiting for the field they precede
    line_start_name: str | None = None
    at_line_start = True
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, SyntaxError):
        return {}
    for i, tok in enumerate(tokens):
        if tok.type == tokenize.COMMENT:
            text = tok.string.lstrip("#").strip()
            if at_line_start:
                pending.append(text)
            elif line_start_name is not None:
                comments[line_start_name] = f"{comments.get(line_start_name, '')} {text}".strip()
        elif tok.type in (tokenize.NEWLINE, tokenize.NL):
            at_line_start, line_start_name = True, None
        elif tok.type in (tokenize.INDENT, tokenize.DEDENT):
            continue
        elif at_line_start:
            at_line_start = False
            # A line opening "name:" may be a field; only names dataclasses.fields() lists are used.
            nxt = tokens[i + 1] if i + 1 < len(tokens) else None
            if tok.type == tokenize.NAME and nxt is not None and nxt.string == ":":
                line_start_name = tok.string
                if pending:
                    comments[tok.string] = " ".join(pending)
            pending = []
    return comments


def with_defaults(method: str, config: Mapping[str, Any]) -> dict[str, Any]:
    """``config`` as recorded, with the registered method's defaults for keys it lacks.

    A key added to a method later keeps the old behaviour by default, so an archive made before
    the key existed ran with that default. A method not installed here is taken as recorded.
    """
    from vdcbench.core.errors import VdcError
    from vdcbench.methods.registry import get_method
    try:
        defaults = get_method(method).Config()
    except VdcError:
        return dict(config)
    if not dataclasses.is_dataclass(defaults):
        return dict(config)
    return {**json.loads(json.dumps(dataclasses.asdict(defaults))), **config}


def method_settings(config_cls: type) -> list[Setting]:
    """Every ``--set`` key of a method's config, in declaration order."""
    if not dataclasses.is_dataclass(config_cls):
        return []
    comments = _source_comments(config_cls)
    defaults = config_cls()
    settings = []
    for f in dataclasses.fields(config_cls):
        type_name = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
        help_text = f.metadata.get("help") or comments.get(f.name, "")
        settings.append(Setting(f.name, type_name, getattr(defaults, f.name), help_text))
    return settings
