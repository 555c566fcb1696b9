"""`engine:` and `spark:` in liucun.yml, and which engine a warehouse folder belongs to (no Spark
needed: these are the checks made before a session starts)."""

from __future__ import annotations

import json
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
    ("spark", {"method": "thrift"}, "'thrift' is not available"),
    ("spark", {"conf": {"spark.hadoop.fs.s3a.secret.key": "x"}}, "carries a credential"),
    ("spark", {"conf": {"spark.datasource.password": "x"}}, "carries a credential"),
    ("spark", {"conf": {"fs.s3a.endpoint": "x"}}, "is not a Spark setting"),
    ("spark", {"database_prefix": "Liucun"}, "database_prefix"),
    ("spark", {"host": "x"}, "unknown keys"),
])
def test_a_bad_engine_setting_is_refused_with_what_to_do(name, spark, message):
    with pytest.raises(ConfigError, match=message):
        engine_config(name, spark)


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


def test_the_spark_engine_removes_what_a_killed_run_left_and_keeps_the_publication(tmp_path: Path):
    """A run killed after renaming its version folder into place but before switching CURRENT (a
    window of microseconds, which no external kill can aim at), or while writing it, or while
    switching the pointer: the next run's recovery (no SparkSession needed for the files) keeps the
    current version and the state's raw files, and removes everything else."""
    from flows.engines.spark_engine import SparkEngine
    from flows.publish.warehouse import Warehouse

    engine = SparkEngine(Warehouse(tmp_path), SparkConfig())
    loc = engine.location
    published = loc / "published"
    for folder in ("20260101T000000-aaaaaaaa/marts/m", "20260102T000000-bbbbbbbb/marts/m",
                   ".20260103T000000-cccccccc/marts/m", "20260104T000000-dddddddd/marts/m"):
        (published / folder).mkdir(parents=True)
        (published / folder / "part-0.parquet").write_bytes(b"x")
    (published / "CURRENT").write_text("20260102T000000-bbbbbbbb\n")
    (published / ".CURRENT.dddddddd").write_text("20260104T000000-dddddddd\n")
    kept_raw = loc / "raw" / "orders" / "run-b"
    for d in (kept_raw, loc / "raw" / "orders" / "run-d", loc / "raw" / "ledger-loads" / "run-d",
              loc / "candidates" / "run-d" / "liucun_cdddddddd_raw.db", loc / "incoming" / "run-d"):
        d.mkdir(parents=True)
    (loc / "state.json").write_text(json.dumps({"tables": {"orders": str(kept_raw)}}))
    (loc / ".state.json.run-d").write_text("{")  # the killed run's state, half written

    assert "run-d" in engine.clear_leftovers()
    assert sorted(p.name for p in published.iterdir()) == [
        "20260101T000000-aaaaaaaa", "20260102T000000-bbbbbbbb", "CURRENT"]  # older versions stay for readers
    assert (published / "CURRENT").read_text().strip() == "20260102T000000-bbbbbbbb"
    assert [str(p) for p in (loc / "raw").rglob("run-*")] == [str(kept_raw)]
    assert not any((loc / "candidates").iterdir()) and not any((loc / "incoming").iterdir())
    assert not list(loc.glob(".state.json.*")) and (loc / "state.json").exists()


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
