"""`engine:` and `spark:` in liucun.yml, and which engine a warehouse folder belongs to (no Spark
needed: these are the checks made before a session starts)."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path

import pytest

from flows.config import ConfigError, EngineConfig, SparkConfig, engine_config, load_config
from flows.engines import EngineMismatch, engine_for, record_engine, recorded_engine
from flows.runtime.redact import redact


def test_the_default_engine_is_duckdb_and_spark_settings_are_read():
    assert engine_config(None, None) == EngineConfig("duckdb")
    cfg = engine_config("spark", {"master": "local[3]", "location": "/data/liucun",
                                  "conf": {"spark.sql.shuffle.partitions": 16}, "database_prefix": "team_a_"})
    assert cfg.name == "spark" and cfg.spark.master == "local[3]" and cfg.spark.location == "/data/liucun"
    assert cfg.spark.conf == (("spark.sql.shuffle.partitions", "16"),) and cfg.spark.database_prefix == "team_a_"


@pytest.mark.parametrize(("name", "spark", "message"), [
    ("sparky", None, "engine must be one of duckdb, spark"),
    ("spark", {"method": "odbc"}, "'odbc' is not available"),
    ("spark", {"method": "thrift"}, "needs the Thrift Server's host name"),
    ("spark", {"method": "thrift", "host": "h", "port": 0}, "port must be a port number"),
    ("spark", {"method": "thrift", "host": "h", "auth": "PLAINTEXT"}, "use one of NONE, NOSASL"),
    ("spark", {"method": "thrift", "host": "h", "auth": "LDAP"}, "needs a password: password_env"),
    ("spark", {"method": "thrift", "host": "h", "password_env": "PW"}, "takes no password"),
    ("spark", {"method": "thrift", "host": "h", "auth": "LDAP", "password_env": "A", "password_secret": "b"},
     "not both"),
    ("spark", {"method": "thrift", "host": "h", "auth": "LDAP", "password": "hunter2"}, "never put a password"),
    ("spark", {"method": "thrift", "host": "h", "kerberos_service_name": "hive"}, "is for auth KERBEROS"),
    ("spark", {"method": "thrift", "host": "h", "master": "yarn"}, "a Thrift Server has its own master"),
    ("spark", {"conf": {"spark.hadoop.fs.s3a.secret.key": "x"}}, "carries a credential"),
    ("spark", {"conf": {"spark.datasource.password": "x"}}, "carries a credential"),
    ("spark", {"conf": {"fs.s3a.endpoint": "x"}}, "is not a Spark setting"),
    ("spark", {"database_prefix": "Liucun"}, "database_prefix"),
    ("spark", {"host": "x"}, "belong to `method: thrift`"),
    ("spark", {"hosts": "x"}, "unknown keys"),
])
def test_a_bad_engine_setting_is_refused_with_what_to_do(name, spark, message):
    with pytest.raises(ConfigError, match=message):
        engine_config(name, spark)


def test_a_thrift_server_is_given_as_dbt_spark_users_give_it(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("SPARK_HOST", "sts.internal")
    cfg = engine_config("spark", {"method": "thrift", "host": "${SPARK_HOST}", "port": 10001, "user": "etl",
                                  "auth": "ldap", "password_env": "LIUCUN_SPARK_PASSWORD",
                                  "location": "/mnt/shared/liucun"})
    s = cfg.spark
    assert (s.method, s.host, s.port, s.user, s.auth) == ("thrift", "sts.internal", 10001, "etl", "LDAP")
    assert s.password_env == "LIUCUN_SPARK_PASSWORD" and s.password_secret is None and s.master is None
    kerberos = engine_config("spark", {"method": "thrift", "host": "h", "auth": "KERBEROS"}).spark
    assert kerberos.kerberos_service_name == "hive" and kerberos.port == 10000


def test_the_thrift_password_comes_from_its_variable_and_is_masked_from_then_on(monkeypatch: pytest.MonkeyPatch):
    from flows.engines.spark_sql import SparkUnavailable, thrift_password

    config = engine_config("spark", {"method": "thrift", "host": "h", "auth": "LDAP",
                                     "password_env": "LIUCUN_TEST_SPARK_PW"}).spark
    monkeypatch.delenv("LIUCUN_TEST_SPARK_PW", raising=False)
    with pytest.raises(SparkUnavailable, match="LIUCUN_TEST_SPARK_PW .* is not set"):
        thrift_password(config)
    # the engine's own check says so before anything runs
    engine = engine_for(Path("/nonexistent-warehouse"), EngineConfig("spark", config))
    assert any("LIUCUN_TEST_SPARK_PW" in p for p in engine.prerequisites())
    monkeypatch.setenv("LIUCUN_TEST_SPARK_PW", "s3cr3t-Pa55")
    assert thrift_password(config) == "s3cr3t-Pa55"
    # no pattern would know this is a password: it is masked because it was read as one
    assert redact("login failed for etl with s3cr3t-Pa55 at sts:10000") == "login failed for etl with *** at sts:10000"
    assert not [p for p in engine.prerequisites() if "LIUCUN_TEST_SPARK_PW" in p]


def test_a_thrift_server_that_is_not_there_is_named_in_the_error(tmp_path: Path):
    import socket

    from flows.engines.spark_sql import SparkUnavailable, connect

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = engine_config("spark", {"method": "thrift", "host": "127.0.0.1", "port": port}).spark
    with pytest.raises(SparkUnavailable, match=rf"Thrift Server at 127.0.0.1:{port} could not be reached .*spark.host"):
        connect(config, tmp_path)


def test_the_config_file_carries_the_engine(tmp_path: Path):
    cfg = tmp_path / "liucun.yml"
    cfg.write_text("engine: spark\nspark: {location: lake}\nsources:\n  crm:\n    kind: customers\n"
                   "    files: {path: 'crm/*.csv', format: csv}\n", encoding="utf-8")
    loaded = load_config(cfg)
    assert loaded.engine.name == "spark" and loaded.engine.spark.location == str(tmp_path / "lake")


def test_a_warehouse_folder_belongs_to_one_engine(tmp_path: Path):
    spark = EngineConfig("spark", SparkConfig(location=str(tmp_path / "lake")))
    record_engine(tmp_path, spark)
    assert recorded_engine(tmp_path) == spark
    assert "password" not in (tmp_path / "engine.json").read_text()
    assert engine_for(tmp_path).name == "spark"  # the folder says which engine, for commands given only it
    with pytest.raises(EngineMismatch, match="holds a spark warehouse"):
        engine_for(tmp_path, "duckdb")
    duck = tmp_path / "duck"
    duck.mkdir()
    (duck / "liucun.duckdb").touch()
    with pytest.raises(EngineMismatch, match="holds a duckdb warehouse"):
        engine_for(duck, spark)
    assert engine_for(duck).name == "duckdb"


def test_connection_tokens_are_redacted():
    text = "cannot reach sc://spark.example:15002/;token=dapi0123456789abcdef;user_id=etl (password=hunter2)"
    out = redact(text)
    assert "dapi0123456789abcdef" not in out and "hunter2" not in out and "user_id=etl" in out


@pytest.mark.parametrize("store", [False, True], ids=["local-folder", "object-store"])
def test_the_spark_engine_removes_what_a_killed_run_left_and_keeps_the_publication(tmp_path: Path, store: bool):
    """A run killed after its version folder was complete but before switching CURRENT (on a local
    folder: renamed into place, a window of microseconds no external kill can aim at; on an object
    store: written straight there), or while writing it, or while switching the pointer: the next
    run's recovery (no Spark needed for the files) keeps the current version and the state's raw
    files, and removes everything else. The object store is pyarrow's in-memory file system, which
    has no rename."""
    import pyarrow.fs as pafs

    from flows.engines.spark_engine import SparkEngine
    from flows.publish.warehouse import Warehouse

    config = SparkConfig(location="s3a://bucket/liucun") if store else SparkConfig()
    engine = SparkEngine(Warehouse(tmp_path), config, filesystem=pafs._MockFileSystem() if store else None)
    loc = engine.loc
    assert loc.renames is not store
    for folder in ("20260101T000000-aaaaaaaa/marts/m", "20260102T000000-bbbbbbbb/marts/m",
                   ".20260103T000000-cccccccc/marts/m", "20260104T000000-dddddddd/marts/m"):
        loc.write_text(("published", *folder.split("/"), "part-0.parquet"), "x", "t")
    loc.write_text(("published", "CURRENT"), "20260102T000000-bbbbbbbb\n", "t")
    loc.write_text(("published", ".CURRENT.dddddddd"), "20260104T000000-dddddddd\n", "t")
    for parts in (("raw", "orders", "run-b"), ("raw", "orders", "run-d"), ("raw", "ledger-loads", "run-d"),
                  ("candidates", "run-d", "liucun_cdddddddd_raw.db"), ("incoming", "run-d")):
        loc.write_text((*parts, "part-0.parquet"), "x", "t")
    kept_raw = loc.spark("raw", "orders", "run-b")
    loc.write_text(("state.json",), json.dumps({"tables": {"orders": kept_raw}}), "t")
    loc.write_text((".state.json.run-d",), "{", "t")  # the killed run's state, half written

    assert "run-d" in engine.clear_leftovers()
    assert loc.names("published") == [
        "20260101T000000-aaaaaaaa", "20260102T000000-bbbbbbbb", "CURRENT"]  # older versions stay for readers
    assert loc.read_text("published", "CURRENT").strip() == "20260102T000000-bbbbbbbb"
    assert loc.names("raw", "orders") == ["run-b"] and loc.names("raw", "ledger-loads") == []
    assert loc.names("candidates") == [] and loc.names("incoming") == []
    assert loc.names() == ["candidates", "incoming", "published", "raw", "state.json"]
    # what is published is read back through the same file system (no Spark: CLI and summaries)
    import pyarrow as pa

    from flows.engines.spark_publish import PUBLICATIONS_SCHEMA

    schema = pa.schema([(n, pa.type_for_alias(t)) for n, t in PUBLICATIONS_SCHEMA])
    row = {"run_id": "run-b", "version": "20260102T000000-bbbbbbbb", "published_at": datetime(2026, 1, 2, 0, 0, 5),
           "as_of_date": date(2026, 1, 2), "gates": "{}", "row_counts": json.dumps({"m": 7})}
    loc.write_table(pa.Table.from_pylist([row], schema=schema),
                    "published", "20260102T000000-bbbbbbbb", "audit", "publications", "part-00000.parquet")
    current = engine.current_publication()
    assert current is not None and current.version == "20260102T000000-bbbbbbbb" and current.row_counts == {"m": 7}
    assert str(current.parquet_dir).endswith("published/20260102T000000-bbbbbbbb/marts")


def test_recovery_keeps_every_raw_file_when_the_state_names_files_outside_the_location(tmp_path: Path):
    """spark.location changed between runs: the state's files are elsewhere, so nothing under the
    new location can be told apart as left over; recovery removes no raw file."""
    from flows.engines.spark_engine import SparkEngine
    from flows.publish.warehouse import Warehouse

    engine = SparkEngine(Warehouse(tmp_path), SparkConfig(location=str(tmp_path / "new")))
    loc = engine.loc
    loc.write_text(("raw", "orders", "run-a", "part-0.parquet"), "x", "t")
    loc.write_text(("state.json",), json.dumps({"tables": {"orders": str(tmp_path / "old" / "raw" / "orders" / "run-a")}}), "t")
    engine.clear_leftovers()
    assert loc.names("raw", "orders") == ["run-a"]


def test_liucun_check_says_what_the_spark_engine_lacks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from flows.engines.spark_engine import SparkEngine
    from flows.publish.warehouse import Warehouse

    engine = SparkEngine(Warehouse(tmp_path), SparkConfig())
    monkeypatch.delenv("SPARK_REMOTE", raising=False)
    assert engine.prerequisites() == []  # this machine has the spark extra and Java (make test installs them)
    monkeypatch.setenv("SPARK_REMOTE", "sc://spark.example:15002")
    assert any("unset SPARK_REMOTE" in p for p in engine.prerequisites())
    monkeypatch.delenv("SPARK_REMOTE")
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # no java on it
    assert any("needs Java 17" in p for p in engine.prerequisites())
