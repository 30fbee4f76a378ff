"""Copy each archive's method settings into result records written before records carried them.

Records name their archive by sha256; its manifest holds the method's config (the ``--set``
values and defaults it ran with). Since 2026-11-29 ``vdcbench evaluate`` writes that config into
``method.config`` of every record, so that ``vdcbench results`` keeps one method run with other
settings (RDED with ``min_scale=1``) in a row of its own. This fills it into older records from
the archives at hand; a record whose archive is not found is left as it is and reported.
Idempotent, and each record is rewritten atomically.

    python scripts/backfill_record_config.py RECORDS_DIR [...] --archives DIR [--archives DIR ...]
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from vdcbench.archive import read_archive
from vdcbench.evaluation.records import EvalRecord
from vdcbench.train.teacher import file_sha256


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("records", nargs="+", type=Path)
    parser.add_argument("--archives", action="append", type=Path, required=True)
    args = parser.parse_args()
    archives = {file_sha256(p): p for folder in args.archives for p in sorted(folder.glob("*.tar"))}
    configs: dict[str, dict] = {}
    filled = missing = 0
    for root in args.records:
        for path in sorted(root.rglob("seed*.json")):
            record = EvalRecord.from_disk(path)
            if "config" in record.method:
                continue
            sha = record.key.archive_sha256
            if sha not in archives:
                missing += 1
                print(f"no archive for {path} ({sha[:12]})")
                continue
            if sha not in configs:
                configs[sha] = dict(read_archive(archives[sha]).condensed.method.config)
            record = dataclasses.replace(record, method={**record.method, "config": configs[sha]})
            if root / record.relative_path() != path:
                print(f"skipped {path}: not where its key files it ({record.relative_path()})")
                continue
            record.to_disk(root)
            filled += 1
    print(f"filled {filled} records; {missing} without their archive")


if __name__ == "__main__":
    main()
