"""protocol/FORMAT.md is enough to write an archive: its own example program, run by itself with
numpy and the standard library, writes one that ``vdcbench validate`` accepts (issue 16 item 5)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tarfile
from pathlib import Path

from click.testing import CliRunner

from vdcbench.archive.manifest import SCHEMA_PATH
from vdcbench.cli import main
from vdcbench.protocol import load_protocol

PROTOCOL_DIR = Path(__file__).resolve().parents[1] / "protocol"
FORMAT = PROTOCOL_DIR / "FORMAT.md"
MARKER = "<!-- example: write_archive.py -->"


def example_program() -> str:
    text = FORMAT.read_text(encoding="utf-8")
    after = text[text.index(MARKER) + len(MARKER):]
    match = re.match(r"\s*```python\n(.*?)\n```", after, re.S)
    assert match, f"no python block after {MARKER} in {FORMAT}"
    return match.group(1) + "\n"


def test_the_example_program_writes_a_valid_archive(tmp_path):
    program = example_program()
    # A stranger's writer: no vdcbench, no torch, no safetensors.
    imported = set(re.findall(r"^(?:import|from) (\w+)", program, re.M))
    assert imported <= {"hashlib", "io", "json", "sys", "tarfile", "tomllib", "numpy"}, imported
    script = tmp_path / "write_archive.py"
    script.write_text(program, encoding="utf-8")
    # -I: no PYTHONPATH, user site or script directory; the import check above keeps vdcbench out.
    done = subprocess.run([sys.executable, "-I", str(script), str(PROTOCOL_DIR / "v1.toml"),
                           "my.tar"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    archive = tmp_path / "my.tar"
    result = CliRunner().invoke(main, ["validate", str(archive)])
    assert result.exit_code == 0, result.output
    assert "valid" in result.output
    with tarfile.open(archive) as tar:
        assert tar.getnames()[0] == "manifest.json"


def test_the_documented_protocol_hash_is_the_protocol_s():
    assert load_protocol(1).sha256 in FORMAT.read_text(encoding="utf-8")


def test_the_documented_dtypes_are_the_schema_s():
    schema = json.loads(SCHEMA_PATH.read_text())
    enums = {name: schema["$defs"][name]["properties"]["dtype"]["enum"]
             for name in ("videos", "labels", "soft_labels")}
    assert enums == {"videos": ["uint8", "float16", "float32"], "labels": ["int64"],
                     "soft_labels": ["float32"]}
