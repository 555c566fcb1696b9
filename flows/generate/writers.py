"""File writers: DuckDB ``COPY ... TO`` from registered Arrow tables (CSV, JSON lines, Parquet)."""

from __future__ import annotations

import logging
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

log = logging.getLogger(__name__)

_FORMATS = {
    "csv": "(FORMAT csv, HEADER true)",
    "json": "(FORMAT json)",
    "parquet": "(FORMAT parquet, COMPRESSION zstd)",
}


def take_masked(values: pa.Array, idx: np.ndarray, valid: np.ndarray) -> pa.Array:
    """``values[idx]`` where ``valid``, null elsewhere (Arrow ``take``, no Python strings)."""
    if len(values) == 0:
        return pa.nulls(idx.size, pa.string())
    return values.take(pa.array(np.where(valid, idx, 0), pa.int64(), mask=~valid))


class Writer:
    """Writes Arrow tables through one in-memory DuckDB connection, recording row counts."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self.con = duckdb.connect(":memory:")
        self.con.execute("SET TimeZone = 'UTC'")
        self.con.execute("SET preserve_insertion_order = true")
        self.con.execute("SET enable_progress_bar = false")
        self.files: dict[str, int] = {}

    def write(self, rel: str, table: pa.Table, select_sql: str, fmt: str,
              order_by: str | None = None, exclude: tuple[str, ...] = ()) -> int:
        """``COPY (select_sql [ORDER BY ...]) TO out_dir/rel``; ``select_sql`` reads from ``t``."""
        path = self.out_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        query = select_sql.strip()
        if exclude:
            query = f"SELECT * EXCLUDE ({', '.join(exclude)}) FROM ({query})"
        if order_by:
            query = f"{query}\nORDER BY {order_by}"
        self.con.register("t", table)
        try:
            sql_path = str(path).replace("'", "''")
            self.con.execute(f"COPY ({query}) TO '{sql_path}' {_FORMATS[fmt]}")
        finally:
            self.con.unregister("t")
        self.files[rel] = table.num_rows
        log.debug("wrote %s (%d rows)", rel, table.num_rows)
        return table.num_rows

    def close(self) -> None:
        """Close the DuckDB connection."""
        self.con.close()
