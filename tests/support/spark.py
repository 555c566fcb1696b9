"""One local SparkSession for the whole test run (local[2], a throwaway warehouse folder and
metastore), and copying a DuckDB warehouse's raw layer into it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb


def local_session(root: Path) -> Any:
    """A SparkSession on this machine with its warehouse, metastore and scratch under ``root``."""
    from pyspark.sql import SparkSession

    root.mkdir(parents=True, exist_ok=True)
    spark = (SparkSession.builder.master("local[2]").appName("liucun-tests")
             .config("spark.sql.warehouse.dir", str(root / "warehouse"))
             .config("spark.driver.extraJavaOptions", f"-Dderby.system.home={root}")
             .config("spark.local.dir", str(root / "scratch"))
             .config("spark.sql.session.timeZone", "UTC")
             .config("spark.sql.shuffle.partitions", "4")
             .config("spark.ui.enabled", "false")
             .enableHiveSupport().getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def copy_raw_to_spark(duck_db: Path, spark: Any, folder: Path, prefix: str = "") -> dict[str, int]:
    """Copy every raw.* and ml.* table of a DuckDB warehouse (not the ``_`` ledgers) into the
    databases ``<prefix>raw`` and ``<prefix>ml`` of ``spark``, through Parquet files in ``folder``
    (JSON columns as text, as Spark keeps them). Row counts keyed by table (ml ones as ml.<table>)."""
    from flows.engines.spark_raw import export_parquet, read_parquet

    folder.mkdir(parents=True, exist_ok=True)
    counts = {}
    with duckdb.connect(str(duck_db), read_only=True) as src:
        for schema in ("raw", "ml"):
            spark.sql(f"create database if not exists {prefix}{schema}")
            tables = [r[0] for r in src.execute(
                "select table_name from duckdb_tables() where schema_name = ? and table_name not like '!_%' escape '!'",
                [schema]).fetchall()]
            for t in tables:
                file = folder / f"{schema}.{t}.parquet"
                export_parquet(src, t, file, schema)  # as the Spark engine lands its raw rows
                frame = read_parquet(spark, file)
                spark.sql(f"drop table if exists {prefix}{schema}.`{t}`")
                frame.write.format("parquet").saveAsTable(f"{prefix}{schema}.`{t}`")
                counts[t if schema == "raw" else f"{schema}.{t}"] = spark.table(f"{prefix}{schema}.`{t}`").count()
    return counts
