"""Write-audit-publish on Spark: versioned Parquet folders behind one pointer.

:func:`prepare` (while the marts gate runs; nothing in it is visible): every mart of the candidate
and the audit tables (source_loads, quarantine, source_files), each by one Spark SQL statement
(``insert overwrite directory``), so the same code publishes from a local session and through a
Thrift Server. Where the location's file system renames (a local folder, HDFS) they go into a
hidden ``published/.<version>/``; on an object store, straight into ``published/<version>/``,
which no reader follows until ``CURRENT`` names it.

:func:`complete` (after every gate passed): ``audit/publications`` (the previous version's rows
plus this one, with the gates' verdicts: one small file this process writes), the folder flushed
and renamed to ``published/<version>/`` (where the file system renames), then ``published/CURRENT``
replaced: the one step that makes the new version what readers see (a rename, or one PUT on an
object store). Older versions stay (the last ``keep``), so a reader that resolved the pointer
before the switch finishes reading its own version.

A crash before the pointer is replaced leaves the previous publication current; the next run
removes what this one left (flows/engines/spark_engine.py ``clear_leftovers``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING

from flows.engines.base import Publication
from flows.engines.spark_sql import lit, parquet_files
from flows.runtime import stopping

if TYPE_CHECKING:
    from flows.engines.spark_location import Location
    from flows.engines.spark_sql import SparkSql

# audit.publications, one row per publication (the types Spark gave it when it wrote the first ones)
PUBLICATIONS_SCHEMA = (("run_id", "string"), ("version", "string"), ("published_at", "timestamp[us]"),
                       ("as_of_date", "date32"), ("gates", "string"), ("row_counts", "string"))


@dataclass
class PreparedPublication:
    run_id: str
    version: str
    staged: str  # the folder under published/ it is written into
    row_counts: dict[str, int] = field(default_factory=dict)


def _write(sql: SparkSql, location: Location, parts: tuple[str, ...], query: str) -> None:
    """``query``'s rows as the Parquet folder ``parts``, which must not exist yet (Spark writes a
    file with the schema even when there are no rows)."""
    if location.exists(*parts):
        raise FileExistsError(f"{location.spark(*parts)} exists: a publication's folders are written once")
    sql.execute(f"insert overwrite directory {lit(location.spark(*parts))} using parquet {query}")


def prepare(sql: SparkSql, location: Location, current: str | None, prefix: str, run_id: str) -> PreparedPublication:
    version = datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + run_id[:8]
    staged = f".{version}" if location.renames else version
    prepared = PreparedPublication(run_id, version, staged)
    try:
        marts = sorted(str(name) for _, name, temporary in sql.rows(f"show tables in `{prefix}marts`")
                       if not temporary)
        if not marts:
            raise RuntimeError(f"candidate {prefix}marts has no marts: refusing to publish")
        for t in marts:
            stopping.check()
            _write(sql, location, ("published", staged, "marts", t), f"select * from `{prefix}marts`.`{t}`")
            prepared.row_counts[t] = int(sql.scalar(
                f"select count(*) from {parquet_files(location.spark('published', staged, 'marts', t))}"))
        raw = f"`{prefix}raw`"
        cols = ", ".join(f"`{r[0]}`" for r in sql.rows(f"show columns in {raw}._loads"))
        loads = f"select {cols} from {raw}._loads"
        if current is not None:  # the load ledger of earlier publications is kept (a full refresh starts the state anew)
            loads += f" union all select {cols} from {parquet_files(location.spark('published', current, 'audit', 'source_loads'))}"
        audit = {
            "source_loads": "select * except (n) from (select *, row_number() over (partition by load_id "
                            f"order by finished_at desc) as n from ({loads}) as l) as ranked where n = 1",
            "quarantine": f"select * from {raw}._quarantine",
            "source_files": f"select * from {raw}._files",
        }
        for name, query in audit.items():
            stopping.check()
            _write(sql, location, ("published", staged, "audit", name), query)
    except BaseException:
        location.remove("published", staged)
        raise
    return prepared


def complete(location: Location, current: str | None, prepared: PreparedPublication, as_of: date,
             gates: dict[str, dict], keep: int) -> Publication:
    import pyarrow as pa

    now = datetime.now(UTC).replace(tzinfo=None)
    schema = pa.schema([(name, pa.type_for_alias(ty)) for name, ty in PUBLICATIONS_SCHEMA])
    rows = pa.Table.from_pylist([{"run_id": prepared.run_id, "version": prepared.version, "published_at": now,
                                  "as_of_date": as_of, "gates": json.dumps(gates),
                                  "row_counts": json.dumps(prepared.row_counts)}], schema=schema)
    if current is not None:
        earlier = location.read_table("published", current, "audit", "publications")
        rows = pa.concat_tables([earlier.select(schema.names).cast(schema), rows])
    location.write_table(rows, "published", prepared.staged, "audit", "publications", "part-00000.parquet")
    location.fsync("published", prepared.staged)
    if prepared.staged != prepared.version:
        location.move(("published", prepared.staged), ("published", prepared.version))
        location.fsync("published", tree=False)
    location.write_text(("published", "CURRENT"), prepared.version + "\n", prepared.run_id)  # the publish
    versions = [v for v in location.names("published", dirs_only=True) if not v.startswith(".")]
    for old in versions[:-keep]:
        if old != prepared.version:
            location.remove("published", old)
    return Publication(prepared.run_id, prepared.version, now, location.display("published", prepared.version),
                       location.display("published", prepared.version, "marts"), prepared.row_counts)
