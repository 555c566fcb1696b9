"""Write-audit-publish on Spark: versioned Parquet folders behind one pointer.

:func:`prepare` (while the marts gate runs; nothing in it is visible): every mart of the candidate
and the audit tables (source_loads, quarantine, source_files) into ``published/.<version>/``.

:func:`complete` (after every gate passed): ``audit/publications`` (the previous version's rows
plus this one, with the gates' verdicts) into the staged folder, fsync, rename it to
``published/<version>/``, then replace ``published/CURRENT`` by rename: the one step that makes
the new version what readers see. Older versions stay (the last ``keep``), so a reader that resolved
the pointer before the switch finishes reading its own version.

A crash before the pointer's rename leaves the previous publication current; the next run removes
what this one left (flows/engines/spark_engine.py ``clear_leftovers``).
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from flows.engines.base import Publication
from flows.publish.warehouse import fsync_path, write_atomically
from flows.runtime import stopping


@dataclass
class PreparedPublication:
    run_id: str
    version: str
    staged: Path
    row_counts: dict[str, int] = field(default_factory=dict)


def _fsync_tree(root: Path) -> None:
    for folder, _, files in os.walk(root):
        for f in files:
            fsync_path(Path(folder) / f)
        fsync_path(Path(folder))


def prepare(spark: Any, published: Path, current: str | None, prefix: str, run_id: str) -> PreparedPublication:
    version = datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + run_id[:8]
    staged = published / f".{version}"
    prepared = PreparedPublication(run_id, version, staged)
    try:
        marts = sorted(t.name for t in spark.catalog.listTables(prefix + "marts") if not t.isTemporary)
        if not marts:
            raise RuntimeError(f"candidate {prefix}marts has no marts: refusing to publish")
        for t in marts:
            stopping.check()
            frame = spark.table(f"`{prefix}marts`.`{t}`")
            frame.write.mode("error").parquet(str(staged / "marts" / t))
            prepared.row_counts[t] = spark.read.parquet(str(staged / "marts" / t)).count()
        raw = f"`{prefix}raw`"
        loads = spark.table(f"{raw}._loads")
        if current is not None:  # the load ledger of earlier publications is kept (a full refresh starts the state anew)
            loads = loads.unionByName(spark.read.parquet(str(published / current / "audit" / "source_loads")))
        loads.createOrReplaceTempView("liucun_publish_loads")
        audit = {
            "source_loads": spark.sql(
                "select * except (n) from (select *, row_number() over (partition by load_id "
                "order by finished_at desc) as n from liucun_publish_loads) where n = 1"),
            "quarantine": spark.table(f"{raw}._quarantine"),
            "source_files": spark.table(f"{raw}._files"),
        }
        for name, frame in audit.items():
            stopping.check()
            frame.write.mode("error").parquet(str(staged / "audit" / name))
        spark.catalog.dropTempView("liucun_publish_loads")
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    return prepared


def complete(spark: Any, published: Path, current: str | None, prepared: PreparedPublication, as_of: date,
             gates: dict[str, dict], keep: int) -> Publication:
    from pyspark.sql import Row

    now = datetime.now(UTC).replace(tzinfo=None)
    row = spark.createDataFrame([Row(run_id=prepared.run_id, version=prepared.version, published_at=now,
                                     as_of_date=as_of, gates=json.dumps(gates),
                                     row_counts=json.dumps(prepared.row_counts))],
                                "run_id string, version string, published_at timestamp_ntz, as_of_date date, "
                                "gates string, row_counts string")
    if current is not None:
        row = spark.read.parquet(str(published / current / "audit" / "publications")).unionByName(row)
    row.coalesce(1).write.mode("error").parquet(str(prepared.staged / "audit" / "publications"))
    _fsync_tree(prepared.staged)
    version_dir = published / prepared.version
    os.replace(prepared.staged, version_dir)
    fsync_path(published)
    write_atomically(published / "CURRENT", prepared.version + "\n", prepared.run_id)  # the publish
    versions = sorted(d.name for d in published.iterdir() if d.is_dir() and not d.name.startswith("."))
    for old in versions[:-keep]:
        if old != prepared.version:
            shutil.rmtree(published / old, ignore_errors=True)
    return Publication(prepared.run_id, prepared.version, now, version_dir, version_dir / "marts",
                       prepared.row_counts)
