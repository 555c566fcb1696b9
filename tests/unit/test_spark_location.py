"""The Spark engine's location as this process reaches it: a local folder, a file:// URI, and an
in-memory file system standing in for an object store (pyarrow's mock file system: no rename)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs
import pytest

from flows.engines.spark_location import Location


def _locations(tmp_path: Path) -> list[Location]:
    return [Location(tmp_path / "local"), Location(f"file://{tmp_path / 'uri'}"),
            Location("s3a://bucket/liucun", filesystem=pafs._MockFileSystem())]


def test_spark_is_given_the_location_as_written_and_this_process_reaches_the_same_files(tmp_path: Path):
    local, uri, store = _locations(tmp_path)
    assert local.spark("raw", "orders", "r1") == str(tmp_path / "local" / "raw" / "orders" / "r1")
    assert uri.spark("published", "CURRENT") == f"file://{tmp_path}/uri/published/CURRENT"
    assert store.spark("published") == "s3a://bucket/liucun/published" and store.path("x") == "bucket/liucun/x"
    assert (local.renames, local.local) == (True, True)
    assert (uri.renames, uri.local) == (True, True)  # file:// is the local file system
    assert (store.renames, store.local) == (False, False)
    assert store.display("published") == "s3a://bucket/liucun/published"
    with pytest.raises(ValueError, match="liucun reaches"):
        Location("ftp://host/x")


@pytest.mark.parametrize("which", [0, 1, 2], ids=["local", "file-uri", "object-store"])
def test_files_are_written_read_listed_and_removed_alike(tmp_path: Path, which: int):
    loc = _locations(tmp_path)[which]
    assert loc.read_text("published", "CURRENT") is None and loc.names("published") == []
    loc.makedirs("published")
    loc.write_text(("published", "CURRENT"), "v1\n", "run1")
    loc.write_text(("published", "CURRENT"), "v2\n", "run2")  # replaced whole
    assert loc.read_text("published", "CURRENT") == "v2\n"
    assert loc.names("published") == ["CURRENT"]  # no temporary file left behind
    table = pa.table({"run_id": ["a", "b"], "n": [1, 2]})
    loc.write_table(table, "published", "v2", "audit", "publications", "part-00000.parquet")
    assert loc.read_table("published", "v2", "audit", "publications").to_pylist() == table.to_pylist()
    assert loc.names("published", dirs_only=True) == ["v2"]
    src = tmp_path / "rows.parquet"
    src.write_bytes(b"PAR1-not-really")
    loc.put_file(src, "incoming", "r1", "orders.parquet")
    assert loc.exists("incoming", "r1", "orders.parquet")
    loc.remove("incoming", "r1")
    loc.remove("incoming", "r1")  # already gone: nothing to do
    assert not loc.exists("incoming", "r1") and loc.names("incoming") == []


def test_an_object_store_is_never_asked_to_rename(tmp_path: Path):
    store = _locations(tmp_path)[2]
    store.makedirs("published", ".v1")
    with pytest.raises(RuntimeError, match="no rename"):
        store.move(("published", ".v1"), ("published", "v1"))


def test_a_file_the_state_names_is_found_under_the_location_however_the_location_was_spelled(tmp_path: Path):
    local, uri, store = _locations(tmp_path)
    assert local.relative(str(tmp_path / "local" / "raw" / "orders" / "r1")) == "raw/orders/r1"
    assert local.relative(f"file://{tmp_path}/local/raw/orders/r1") == "raw/orders/r1"
    assert uri.relative(str(tmp_path / "uri" / "raw" / "orders" / "r1")) == "raw/orders/r1"
    assert uri.relative(f"file://{tmp_path}/uri/raw/x") == "raw/x"
    assert store.relative("s3a://bucket/liucun/raw/orders/r1") == "raw/orders/r1"
    assert store.relative("s3a://bucket/other/raw/orders/r1") is None
    assert local.relative(str(tmp_path / "local-elsewhere" / "raw")) is None
