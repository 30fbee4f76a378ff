"""The package's architecture as data: layers, lowest first; a module may import its own layer
and the layers below it, never one above. Read from the source (ast), so an import inside a
function or under ``TYPE_CHECKING`` counts as much as one at the top of a file."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import vdcbench

PACKAGE_DIR = Path(vdcbench.__file__).resolve().parent

# (layer, the packages it holds). The order is the architecture: see CONTRIBUTING.md.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("core", ("vdcbench.core",)),
    ("protocol", ("vdcbench.protocol",)),
    ("data", ("vdcbench.data",)),
    ("models", ("vdcbench.models",)),
    ("train", ("vdcbench.train",)),
    ("archive", ("vdcbench.archive",)),
    ("methods", ("vdcbench.methods",)),
    ("evaluation", ("vdcbench.evaluation",)),
    ("study", ("vdcbench.study",)),
    ("leaderboard", ("vdcbench.leaderboard",)),
    ("cli", ("vdcbench.cli",)),
    # The package root only re-exports the library API (lazily) and the version.
    ("api", ("vdcbench",)),
)


def layer_of(module: str) -> int:
    """Index of the layer that owns ``module``: the longest package prefix that matches."""
    best, best_len = None, -1
    for index, (_, packages) in enumerate(LAYERS):
        for package in packages:
            if (module == package or module.startswith(package + ".")) and len(package) > best_len:
                best, best_len = index, len(package)
    if best is None:
        raise AssertionError(f"module {module} belongs to no layer: add its package to LAYERS")
    return best


def module_name(path: Path, root: Path = PACKAGE_DIR) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, module: str, root: Path = PACKAGE_DIR) -> list[tuple[str, int]]:
    """(module imported, line) for every vdcbench import in the file, relative ones resolved."""
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            # ``from vdcbench.x import y`` may name a submodule y: count the deeper module.
            found += [(f"{target}.{alias.name}" if _is_module(f"{target}.{alias.name}", root) else target,
                       node.lineno) for alias in node.names]
    return [(name, line) for name, line in found if name == "vdcbench" or name.startswith("vdcbench.")]


def _is_module(name: str, root: Path) -> bool:
    relative = Path(*name.split(".")[1:])
    return (root / relative).with_suffix(".py").is_file() or (root / relative).is_dir()


def upward_imports(root: Path = PACKAGE_DIR) -> list[str]:
    problems = []
    for path in sorted(root.rglob("*.py")):
        module = module_name(path, root)
        own = layer_of(module)
        for target, line in imported_modules(path, module, root):
            if layer_of(target) > own:
                problems.append(f"{path.relative_to(root.parent)}:{line}: {module} ({LAYERS[own][0]}) "
                                f"imports {target} ({LAYERS[layer_of(target)][0]}), a higher layer")
    return problems


def test_no_module_imports_a_higher_layer():
    problems = upward_imports()
    assert not problems, "\n".join(problems)


def test_every_module_belongs_to_a_layer():
    for path in PACKAGE_DIR.rglob("*.py"):
        layer_of(module_name(path))


def test_an_inverted_import_is_named_with_its_file_and_line(tmp_path):
    # A copy of two modules where the lowest layer imports the CLI: the check must name it.
    package = tmp_path / "vdcbench"
    (package / "core").mkdir(parents=True)
    (package / "cli").mkdir()
    (package / "__init__.py").write_text("")
    (package / "core" / "__init__.py").write_text("")
    (package / "cli" / "__init__.py").write_text("")
    (package / "core" / "bad.py").write_text("import os\n\nfrom vdcbench.cli import main\n")
    problems = upward_imports(package)
    assert problems == ["vdcbench/core/bad.py:3: vdcbench.core.bad (core) imports vdcbench.cli "
                        "(cli), a higher layer"]


@pytest.mark.parametrize("module, layer", [("vdcbench.core.errors", "core"),
                                           ("vdcbench.train.teacher", "train"),
                                           ("vdcbench", "api")])
def test_layer_of(module, layer):
    assert LAYERS[layer_of(module)][0] == layer
