"""Write-audit-publish: the warehouse folder and its run lock (``warehouse``), the atomic publication
of the DuckDB file and versioned Parquet (``duckdb_file``), the one-transaction PostgreSQL publication
(``postgres``) and what each publication was built from (``fingerprint``).
"""
