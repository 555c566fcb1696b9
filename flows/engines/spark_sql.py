"""How the Spark engine talks to Spark: Spark SQL through one connection, whatever the method.

- ``session`` (:class:`SessionSql`): the SparkSession of the run's process — a local one, or the
  driver of a cluster named by ``spark.master`` (YARN, Kubernetes, spark://), or one already
  running there (a test's, a notebook's). dbt-spark's ``session`` method finds the same session.
- ``thrift`` (:class:`ThriftSql`): a Spark Thrift Server (HiveServer2 protocol, through PyHive, as
  dbt-spark's ``thrift`` method): Spark runs on the server's cluster, and this process only sends
  SQL. Its password comes from the environment or a Prefect Secret block, never from liucun.yml,
  and is masked in every message from the moment it is read.

Every step of the engine (landing the raw layer, registering tables, the fit's inputs and scores,
writing a publication) is Spark SQL through :meth:`SparkSql.execute` / :meth:`SparkSql.rows`, so
both methods run the same statements. Data crosses between this process and Spark only as Parquet
files in the engine's location (which both must reach) and as small results: counts, the ledgers'
file hashes and cursors, the fit's distinct rows, gate samples.
"""

from __future__ import annotations

import logging
import os
import threading
from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flows.runtime.redact import LiucunError, register_secret

if TYPE_CHECKING:
    from expectations.results import GateResult
    from expectations.suites import GateParams
    from flows.config import SparkConfig

# what every session liucun makes gets, unless spark.conf says otherwise: dbt-spark turns ANSI mode
# off on the sessions it uses, so the engine's own SQL runs under the same semantics
SESSION_DEFAULTS = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.ansi.enabled": "false",
    "spark.sql.shuffle.partitions": "8",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",  # no stage bars in the run's terminal output
}
# the settings a session on a Thrift Server may take (the others are the server's, fixed at its start)
RUNTIME_DEFAULTS = ("spark.sql.session.timeZone", "spark.sql.ansi.enabled", "spark.sql.shuffle.partitions")


class SparkUnavailable(LiucunError):
    """Spark could not be reached (a Thrift Server down, a wrong host, a refused login)."""


def lit(text: str) -> str:
    """A Spark SQL string literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def parquet_files(name: str) -> str:
    """Parquet files as Spark SQL reads them in place: ``parquet.`<name>```."""
    return "parquet.`" + name.replace("`", "``") + "`"


class SparkSql(ABC):
    """One connection to Spark for a run: statements, small results, and the gates."""

    method: str
    jvm_pid: int | None = None  # a JVM this process started (its memory counts in the run's figures)

    @abstractmethod
    def execute(self, statement: str) -> None:
        """Run one statement (DDL, INSERT ...) to its end."""

    @abstractmethod
    def rows(self, query: str) -> list[tuple]:
        """A query's (small) result."""

    def scalar(self, query: str) -> Any:
        return self.rows(query)[0][0]

    def close(self) -> None:  # noqa: B027 - nothing to release by default
        """Release the connection (a session made by this run is stopped)."""

    @abstractmethod
    def run_gate(self, layer: str, prefix: str, params: GateParams, report_dir: Path | None) -> GateResult:
        """One layer's gate on the candidate whose databases are ``<prefix><layer>``."""


class SessionSql(SparkSql):
    method = "session"

    def __init__(self, spark: Any, made: bool) -> None:
        self.spark = spark
        self.made = made
        if made:
            jvm = getattr(getattr(spark.sparkContext, "_gateway", None), "proc", None)
            self.jvm_pid = jvm.pid if jvm is not None else None

    def execute(self, statement: str) -> None:
        self.spark.sql(statement)  # commands run when issued

    def rows(self, query: str) -> list[tuple]:
        return [tuple(r) for r in self.spark.sql(query).collect()]

    def close(self) -> None:
        if self.made:
            self.spark.stop()

    def run_gate(self, layer: str, prefix: str, params: GateParams, report_dir: Path | None) -> GateResult:
        from expectations.gate import run_gate_spark

        return run_gate_spark(layer, self.spark, prefix, params, report_dir)


class ThriftSql(SparkSql):
    method = "thrift"

    def __init__(self, config: SparkConfig, password: str | None) -> None:
        try:
            from pyhive import hive
        except ImportError:
            raise SparkUnavailable("method thrift needs PyHive: install liucun's spark extra (`make setup-spark`, "
                                   "or `uv sync --extra spark`, or pip install 'liucun[spark]')") from None
        self._hive = hive
        self.config = config
        self.password = password
        self.configuration = {**{k: SESSION_DEFAULTS[k] for k in RUNTIME_DEFAULTS}, **dict(config.conf)}
        # one connection (a server session, with its own temporary views) per thread: the run
        # writes its publication while the marts gate runs, and a Thrift transport is not shared
        self._local = threading.local()
        self._connections: list[Any] = []
        self._lock = threading.Lock()
        self._connection()  # fail here, with a clear message, when the server cannot be reached

    def _connection(self) -> Any:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            c = self.config
            try:
                connection = self._hive.connect(**self.connect_args(), host=c.host, port=c.port, username=c.user)
            except Exception as exc:  # noqa: BLE001 - thrift, SASL and socket errors alike
                raise SparkUnavailable(
                    f"the Spark Thrift Server at {c.host}:{c.port} could not be reached as {c.user!r} (auth "
                    f"{c.auth}): {type(exc).__name__}: {exc}. Check spark.host / spark.port in liucun.yml, that "
                    "the server runs, and the password's variable or Secret block") from None
            self._local.connection = connection
            with self._lock:
                self._connections.append(connection)
        return connection

    def connect_args(self) -> dict[str, Any]:
        """PyHive's arguments beside host, port and user (for this connection and GX's engine)."""
        args: dict[str, Any] = {"auth": self.config.auth, "configuration": self.configuration}
        if self.password is not None:
            args["password"] = self.password
        if self.config.kerberos_service_name:
            args["kerberos_service_name"] = self.config.kerberos_service_name
        return args

    def execute(self, statement: str) -> None:
        cursor = self._connection().cursor()
        try:
            cursor.execute(statement)
        finally:
            cursor.close()

    def rows(self, query: str) -> list[tuple]:
        cursor = self._connection().cursor()
        try:
            cursor.execute(query)
            return [tuple(r) for r in cursor.fetchall()]
        finally:
            cursor.close()

    def close(self) -> None:
        with self._lock:
            connections, self._connections = self._connections, []
        for connection in connections:
            try:
                connection.close()
            except Exception:  # noqa: BLE001, S110 - a server that went away has closed it already
                pass

    def run_gate(self, layer: str, prefix: str, params: GateParams, report_dir: Path | None) -> GateResult:
        from expectations.gate import LAYER_SCHEMAS, run_gate_sql

        databases = {str(r[0]) for r in self.rows("show databases")}
        existing = {f"{db}.{name}" for db in LAYER_SCHEMAS if prefix + db in databases
                    for _, name, temporary in self.rows(f"show tables in `{prefix}{db}`") if not temporary}
        url = f"hive://{self.config.user}@{self.config.host}:{self.config.port}/default"
        return run_gate_sql(layer, existing, url, {"connect_args": self.connect_args()}, prefix, params, report_dir)


def thrift_password(config: SparkConfig) -> str | None:
    """The Thrift Server password: ``$password_env`` or the Prefect Secret block ``password_secret``
    (None when the auth takes none). Registered with the redaction before anything can print it."""
    if config.password_env:
        value = os.environ.get(config.password_env)
        if not value:
            raise SparkUnavailable(f"spark.password_env: the environment variable {config.password_env} (the Spark "
                                   "Thrift Server's password) is not set")
    elif config.password_secret:
        try:
            from prefect.blocks.system import Secret

            value = str(Secret.load(config.password_secret).get())
        except Exception as exc:  # noqa: BLE001
            raise SparkUnavailable(f"spark.password_secret: the Prefect Secret block {config.password_secret!r} "
                                   f"could not be loaded ({type(exc).__name__})") from None
    else:
        return None
    register_secret(value)
    return value


def connect(config: SparkConfig, warehouse_root: Path) -> SparkSql:
    """The run's connection to Spark, by ``spark.method``."""
    if config.method == "thrift":
        return ThriftSql(config, thrift_password(config))
    spark, made = session(config, warehouse_root)
    return SessionSql(spark, made)


def session(config: SparkConfig, warehouse_root: Path) -> tuple[Any, bool]:
    """The run's SparkSession and whether this call made it (then the run stops it at its end).

    With no ``master`` configured, a session already running in the process is used as it is; else
    a new one: ``master`` (default ``local[*]``), :data:`SESSION_DEFAULTS`, then ``spark.conf`` from
    liucun.yml."""
    import importlib.util

    if importlib.util.find_spec("pyspark") is None:
        raise SparkUnavailable("engine spark needs PySpark and Java 17: install liucun's spark extra "
                               "(`make setup-spark`, or `uv sync --extra spark`, or pip install 'liucun[spark]')")
    from pyspark.sql import SparkSession

    # PySpark logs every failing query with the JVM's stack (a gate's error is in its report)
    logging.getLogger("SQLQueryContextLogger").setLevel(logging.CRITICAL)
    active = SparkSession.getActiveSession()
    if active is not None and config.master is None:
        for key in ("spark.sql.session.timeZone", "spark.sql.ansi.enabled"):  # runtime settings: the same semantics
            active.conf.set(key, dict(config.conf).get(key, SESSION_DEFAULTS[key]))
        return active, False
    builder = SparkSession.builder.appName("liucun").master(config.master or "local[*]")
    scratch = warehouse_root / ".spark"
    settings = {**SESSION_DEFAULTS, "spark.local.dir": str(scratch / "tmp"),
                "spark.sql.warehouse.dir": str(scratch / "default-catalog")}
    if (config.master or "local").startswith("local"):
        # local mode runs the executors in the driver's JVM: Spark's default 1g heap is too small
        # for the demo's 10x sample; a quarter of this machine's memory, 1 to 8 GiB (spark.conf wins)
        total_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
        settings["spark.driver.memory"] = f"{max(1024, min(8192, total_mb // 4))}m"
    settings.update(dict(config.conf))
    for key, value in settings.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark, True
