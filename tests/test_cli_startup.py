"""The newcomer's first commands answer before the heavy imports (issue 17 item 7).

Not a timed assert (the machine may be loaded): each cheap path runs in a fresh interpreter that
reports which heavy modules it imported. torch alone takes seconds on a CPU, so a listing or a
user error that imports it cannot answer in about a second.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

HEAVY = ("torch", "torchvision", "numpy", "safetensors", "jsonschema", "av")

RUN = """
import json, sys
from vdcbench.cli import main
code = 0
try:
    main(sys.argv[1:], prog_name="vdcbench")
except SystemExit as exc:
    code = exc.code
print(json.dumps({"code": code, "heavy": [m for m in %r if m in sys.modules]}), file=sys.stderr)
""" % (HEAVY,)


def _run_fresh(args, cwd):
    done = subprocess.run([sys.executable, "-c", RUN, *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=120)
    *message, report = done.stderr.strip().splitlines()
    return json.loads(report), message, done.stdout


@pytest.mark.parametrize("args, code, text", [
    (("protocol",), 0, "official tracks"),
    (("methods",), 0, "random"),
    (("--help",), 0, "run-baseline"),
    (("evaluate", "missing.tar"), 2, "archive missing.tar: no such file"),
    (("evaluate", "somedir"), 2, "is a directory"),
    (("evaluate", "file.tar", "--seeds", "a,b"), 2, "--seeds"),
    (("validate", "missing.tar"), 2, "no such file"),
    (("validate", "gt-actions"), 2, "stores are kept in"),
    (("run-baseline", "random", "--dataset", "synthetic", "--ipc", "0"), 2, "unknown track"),
    (("run-baseline", "random", "--dataset", "synthetic", "--ipc", "1", "-o", "nosuchdir/x.tar"),
     2, "does not exist"),
    (("run-baseline", "random", "--dataset", "synthetic", "--ipc", "1", "-o", "file.tar"),
     2, "pass --overwrite"),
    (("run-baseline", "random", "--dataset", "synthetic", "--ipc", "1", "--seeds", "x"),
     2, "--seeds"),
    # Before generating synthetic (numpy, minutes on a first run) as well as before torch.
    (("run-baseline", "randm", "--dataset", "synthetic", "--ipc", "1"), 2, "did you mean 'random'"),
    (("run-baseline", "random", "--dataset", "synthetic", "--ipc", "1", "--label-strategy", "x"),
     2, "unknown label strategy"),
])
def test_cheap_paths_import_no_torch(tmp_path, args, code, text):
    (tmp_path / "somedir").mkdir()
    (tmp_path / "file.tar").write_bytes(b"")
    report, message, stdout = _run_fresh(args, tmp_path)
    assert report["code"] == code or (code == 0 and report["code"] is None), (report, message)
    assert report["heavy"] == [], f"{args} imported {report['heavy']}"
    shown = stdout if code == 0 else "\n".join(message)
    assert text in shown
    if code:
        assert len(message) == 1, message       # one line, never a traceback


def test_the_listing_reads_what_the_imported_classes_say(tmp_path):
    """Read from the class statements (no torch), the listing says what importing each
    registered method says: name, kind and description."""
    script = ("import json, sys\n"
              "from importlib.metadata import entry_points\n"
              "from vdcbench.methods.catalog import GROUP, _declared, method_summaries\n"
              "unread = [ep.name for ep in entry_points(group=GROUP) if _declared(ep) is None]\n"
              "rows = [[s.name, s.kind, s.description] for s in method_summaries()]\n"
              "print(json.dumps({'rows': rows, 'unread': unread,\n"
              "                  'torch': 'torch' in sys.modules}))\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    listed = json.loads(done.stdout)
    from vdcbench.methods import available_methods
    loaded = [[name, cls.kind.value, cls.description]
              for name, cls in available_methods().items()]
    assert listed["rows"] == loaded
    builtin = {"random", "herding", "kcenter", "forgetting", "rded"}
    assert builtin <= {row[0] for row in listed["rows"]}
    # Every registered method is read from its source: one that is imported instead (its
    # class computes name, kind or description) costs the listing torch's seconds.
    assert listed["unread"] == [], "write these methods' name, kind and description as literals"
    assert listed["torch"] is False


def test_a_kind_written_as_a_member_reads_as_its_value():
    """The catalog reads ``kind = MethodKind.SELECTION`` as "selection": the members' values
    are their names in lower case."""
    from vdcbench.archive.condensed import MethodKind
    assert all(kind.value == kind.name.lower() for kind in MethodKind)


def test_a_class_the_source_cannot_tell_is_imported(tmp_path, monkeypatch):
    """A computed description, or a kind set twice, is not guessed: the class is imported."""
    from importlib.metadata import EntryPoint

    from vdcbench.methods import catalog
    package = tmp_path / "plugs"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "computed.py").write_text(
        "from vdcbench.methods import Method\n"
        "class Computed(Method):\n"
        "    name = 'computed'\n"
        "    kind = 'selection'\n"
        "    description = 'per class, ' + 'something'\n"
        "    def condense(self, task):\n"
        "        raise NotImplementedError\n")
    (package / "plain.py").write_text(
        "from vdcbench.methods import Method\n"
        "class Plain(Method):\n"
        "    name = 'plain'\n"
        "    kind = 'distillation'\n"
        "    description = 'a plain one'\n"
        "    def condense(self, task):\n"
        "        raise NotImplementedError\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    group = "vdcbench.methods"
    computed = EntryPoint("computed", "plugs.computed:Computed", group)
    plain = EntryPoint("plain", "plugs.plain:Plain", group)
    assert catalog._declared(computed) is None
    assert catalog._declared(plain) == catalog.MethodSummary("plain", "distillation",
                                                             "a plain one")
    assert "plugs.plain" not in sys.modules       # read, not run
    monkeypatch.setattr(catalog, "entry_points",
                        lambda group: [computed, plain] if group == catalog.GROUP else [])
    monkeypatch.setattr("vdcbench.methods.registry._entry_points",
                        lambda: {"computed": computed, "plain": plain})
    summaries = catalog.method_summaries()
    assert [s.description for s in summaries] == ["per class, something", "a plain one"]


def test_python_dash_m_vdcbench_runs_the_command(tmp_path):
    done = subprocess.run([sys.executable, "-m", "vdcbench", "protocol"], capture_output=True,
                          text=True, timeout=120, cwd=tmp_path,
                          env=dict(os.environ, COLUMNS="200"))
    assert done.returncode == 0 and "official tracks" in done.stdout, done.stderr
