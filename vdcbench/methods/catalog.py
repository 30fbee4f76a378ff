"""What ``vdcbench methods`` lists: each registered method's name, kind and description, read
from its class statement without running the method's module.

Running it imports torch (seconds on a CPU) before the listing can print a line, for three
class attributes that every built-in method, and the template in CONTRIBUTING.md, writes as
literals: a string, or for the kind ``MethodKind.<MEMBER>``, whose value is the member's name in
lower case (``tests/test_cli_startup.py`` checks both against the imported classes). Those are
read from the module's source. A class that computes them, inherits them, or is not a plain class
statement of a ``.py`` file is imported, as ``get_method`` does, so the listing never guesses; a
module already imported is asked directly. A misspelt kind is refused when the method is used.
"""

from __future__ import annotations

import ast
import importlib.util
import sys
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points

from vdcbench.core.errors import UnknownNameError, VdcError
from vdcbench.methods.registry import GROUP, get_method

_LISTED = ("name", "kind", "description")


@dataclass(frozen=True)
class MethodSummary:
    name: str           # the entry point's name: what ``run-baseline NAME`` takes
    kind: str           # selection | distillation
    description: str


def _registered() -> dict[str, EntryPoint]:
    found = {ep.name: ep for ep in entry_points(group=GROUP)}
    if not found:
        raise VdcError("no condensation methods are registered: is vdcbench installed "
                       "(`pip install -e .`)?")
    return found


def method_summaries() -> list[MethodSummary]:
    """Every registered method, by name."""
    return [_declared(ep) or _loaded(ep.name) for _, ep in sorted(_registered().items())]


def require_registered(name: str) -> None:
    """Raise as ``get_method`` does for a name no plugin registers, without importing any."""
    known = _registered()
    if name not in known:
        raise UnknownNameError("method", name, known)


def _loaded(name: str) -> MethodSummary:
    cls = get_method(name)
    return MethodSummary(name=name, kind=cls.kind.value, description=cls.description)


def _declared(ep: EntryPoint) -> MethodSummary | None:
    """The summary from the class statement's literals, or None when it cannot be read so."""
    module, _, qualname = ep.value.partition(":")
    module, qualname = module.strip(), qualname.strip()
    if not qualname or "." in qualname or "[" in qualname or module in sys.modules:
        return None
    source = _source(module)
    if source is None:
        return None
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return None      # importing it reports the error properly
    classes = [node for node in tree.body
               if isinstance(node, ast.ClassDef) and node.name == qualname]
    # Bound twice, or bound again by an assignment: only running the module knows which wins.
    rebound = any(isinstance(node, (ast.Assign, ast.AnnAssign, ast.FunctionDef, ast.Import,
                                    ast.ImportFrom)) and qualname in _bound_names(node)
                  for node in tree.body)
    if len(classes) != 1 or rebound or classes[0].decorator_list:
        return None
    values = _string_attributes(classes[0])
    if set(values) != set(_LISTED):
        return None
    return MethodSummary(name=ep.name, kind=values["kind"], description=values["description"])


def _source(module: str) -> str | None:
    try:
        spec = importlib.util.find_spec(module)   # imports the parent packages, not the module
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.has_location or not str(spec.origin).endswith(".py"):
        return None
    try:
        with open(spec.origin, encoding="utf-8") as fh:
            return fh.read()
    except (OSError, UnicodeDecodeError):
        return None


def _string_attributes(node: ast.ClassDef) -> dict[str, str]:
    """The listed attributes the class body sets once, each to a plain string."""
    values: dict[str, str] = {}
    seen: set[str] = set()
    for statement in node.body:
        if isinstance(statement, ast.Assign):
            targets, value = statement.targets, statement.value
        elif isinstance(statement, ast.AnnAssign) and statement.value is not None:
            targets, value = [statement.target], statement.value
        else:
            continue
        for target in targets:
            if isinstance(target, ast.Name) and target.id in _LISTED:
                if target.id in seen:
                    return {}
                seen.add(target.id)
                if isinstance(value, ast.Constant) and isinstance(value.value, str):
                    values[target.id] = value.value
                elif (target.id == "kind" and isinstance(value, ast.Attribute)
                      and isinstance(value.value, ast.Name) and value.value.id == "MethodKind"):
                    values[target.id] = value.attr.lower()
    return values if seen == set(values) else {}


def _bound_names(node: ast.stmt) -> set[str]:
    if isinstance(node, ast.FunctionDef):
        return {node.name}
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return {(alias.asname or alias.name).split(".")[0] for alias in node.names}
    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
    return {t.id for target in targets for t in ast.walk(target) if isinstance(t, ast.Name)}
