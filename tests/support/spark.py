"""One local SparkSession for the whole test run (local[2], a throwaway warehouse folder and
metastore), a real Spark Thrift Server (HiveServer2) started from PySpark's own jars, and copying a
DuckDB warehouse's raw layer into a session."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
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


@dataclass
class ThriftServer:
    host: str
    port: int
    process: subprocess.Popen
    log: Path

    def wait_ready(self, timeout: float = 180.0) -> ThriftServer:
        """Wait until the server accepts sessions (its log says so); stop it and raise if it does not."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the Spark Thrift Server exited ({self.process.returncode}); its log: {self.log}")
            if "HiveThriftServer2 started" in self.log.read_text(errors="replace"):
                return self
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"the Spark Thrift Server did not start in {timeout:.0f} s; its log: {self.log}")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def launch_thrift_server(root: Path) -> ThriftServer:
    """A Spark Thrift Server on 127.0.0.1 (local[2], its own JVM, metastore and warehouse under
    ``root``), as a team runs one with ``sbin/start-thriftserver.sh``: PySpark's distribution carries
    the server's jars. Authentication NONE (HiveServer2 then takes any user and password). Returns
    at once (its JVM starts meanwhile): :meth:`ThriftServer.wait_ready` before connecting."""
    from pyspark.find_spark_home import _find_spark_home

    root.mkdir(parents=True, exist_ok=True)
    home = _find_spark_home()
    port = _free_port()
    log = root / "thriftserver.log"
    cmd = [str(Path(home) / "bin" / "spark-submit"), "--master", "local[2]", "--driver-memory", "2g",
           "--conf", "spark.ui.enabled=false", "--conf", f"spark.sql.warehouse.dir={root / 'warehouse'}",
           "--conf", f"spark.local.dir={root / 'scratch'}", "--conf", "spark.sql.shuffle.partitions=4",
           "--driver-java-options", f"-Dderby.system.home={root}",
           "--class", "org.apache.spark.sql.hive.thriftserver.HiveThriftServer2",
           "--hiveconf", f"hive.server2.thrift.port={port}", "--hiveconf", "hive.server2.thrift.bind.host=127.0.0.1",
           "spark-internal"]
    env = {**os.environ, "SPARK_HOME": home}
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    return ThriftServer("127.0.0.1", port, proc, log)


def start_thrift_server(root: Path, timeout: float = 180.0) -> ThriftServer:
    """:func:`launch_thrift_server`, ready to take sessions."""
    return launch_thrift_server(root).wait_ready(timeout)
