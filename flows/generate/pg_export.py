"""Serve generated CRM records and orders from PostgreSQL, like an operational database would.

``liucun generate --out DIR --to-postgres DSN`` writes ``crm.customers`` and ``commerce.orders``
with proper types, primary keys and an ``updated_at`` column (registration / order time at
export), so a liucun PostgreSQL source can pull them incrementally. DuckDB writes them directly
through its postgres extension (no pandas).
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from flows.ingest.readers import lit, load_extension

TABLES = {
    "crm.customers": (
        "crm/customers.csv",
        """select crm_id, phone, email, member_card, registration_channel,
                  cast(registered_at as timestamp) as registered_at, region,
                  cast(city_tier as integer) as city_tier,
                  cast(coalesce(updated_at, registered_at) as timestamp) as updated_at
           from read_csv({files}, all_varchar = true, header = true)""",
        "crm_id",
    ),
    "commerce.orders": (
        "orders/*.parquet",
        """select * exclude (ordered_at, delivered_at),
                  ordered_at, delivered_at, ordered_at as updated_at
           from read_parquet({files})""",
        "order_id",
    ),
}


def export_to_postgres(out_dir: Path, dsn: str) -> dict[str, int]:
    """Create (replace) the CRM and orders tables in PostgreSQL from generated files."""
    counts = {}
    with duckdb.connect() as con:
        con.execute("set TimeZone = 'UTC'")
        load_extension(con, "postgres_scanner")
        con.execute(f"attach {lit(dsn)} as pg (type postgres)")
        for table, (pattern, select, pk) in TABLES.items():
            schema, name = table.split(".")
            con.execute(f"call postgres_execute('pg', 'create schema if not exists {schema}')")
            con.execute(f"call postgres_execute('pg', 'drop table if exists {table}')")
            con.execute("call pg_clear_cache()")
            files = lit(str(out_dir / pattern))
            con.execute(f"create table pg.{schema}.{name} as {select.format(files=files)}")
            con.execute(f"call postgres_execute('pg', 'alter table {table} add primary key ({pk})')")
            counts[table] = con.execute(f"select count(*) from pg.{schema}.{name}").fetchone()[0]  # type: ignore[index]
        con.execute("detach pg")
    return counts
