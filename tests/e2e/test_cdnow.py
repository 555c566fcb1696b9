"""Historic data and whitespace-delimited text: the public CDNOW purchase log (1997-98) through
`liucun run`, as a user runs it with examples/cdnow/liucun.yml.

Known answers come from an independent pandas reading of the same file. Requires the dataset
(CDNOW_MASTER, default ../shared/datasets/cdnow_master.txt.gz); in CI a missing dataset fails.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[2]
DATASET = Path(os.environ.get("CDNOW_MASTER", REPO.parent / "shared" / "datasets" / "cdnow_master.txt.gz"))


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    if not DATASET.exists():
        if os.environ.get("CI"):
            pytest.fail(f"the CDNOW dataset is required in CI: {DATASET} not found")
        pytest.skip(f"{DATASET} not found (set CDNOW_MASTER)")
    wh = tmp_path_factory.mktemp("cdnow")
    env = {**os.environ, "CDNOW_MASTER": str(DATASET), "PREFECT_HOME": str(wh / "prefect"),
           "LIUCUN_PII_SALT": "cdnow-test-salt"}
    proc = subprocess.run(
        [str(Path(sys.executable).with_name("liucun")), "run", "--config", str(REPO / "examples" / "cdnow" / "liucun.yml"),
         "--warehouse", str(wh / "wh"), "--as-of", "1998-06-30"], capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return wh / "wh" / "liucun.duckdb", proc.stdout


@pytest.fixture(scope="module")
def truth() -> pd.DataFrame:
    df = pd.read_csv(DATASET, sep=r"\s+", dtype=str)
    assert list(df.columns) == ["customer_id", "date", "number_of_cds", "dollar_value"]
    return df


def test_every_line_is_accounted_for_and_exact_repeats_are_the_only_quarantine(run, truth: pd.DataFrame):
    published, _ = run
    with duckdb.connect(str(published), read_only=True) as con:
        read, loaded, quarantined = con.execute(
            "select sum(rows_read), sum(rows_loaded), sum(rows_quarantined) from audit.source_loads").fetchone()
        reasons = dict(con.execute("select reason, count(*) from audit.quarantine group by 1").fetchall())
    repeats = int(truth.duplicated().sum())
    assert read == len(truth) and loaded == len(truth) - repeats and quarantined == repeats
    assert reasons == {"duplicate_row": repeats}


def test_1997_history_passes_the_gates_and_orders_match_pandas_per_month(run, truth: pd.DataFrame):
    published, stdout = run
    assert "staging passed" in stdout
    uniq = truth.drop_duplicates()
    expected = uniq.groupby(uniq.date.str[:6]).size().to_dict()
    with duckdb.connect(str(published), read_only=True) as con:
        got = dict(con.execute("select strftime(order_date, '%Y%m'), count(*) from marts.fct_orders group by 1").fetchall())
        first = con.execute("select min(order_date) from marts.fct_orders").fetchone()[0]
    assert got == expected and str(first) == "1997-01-01"


def test_zero_value_orders_are_counted_as_not_activity_in_the_summary(run, truth: pd.DataFrame):
    _, stdout = run
    uniq = truth.drop_duplicates()
    zero = int((uniq.dollar_value.astype(float) == 0).sum())
    assert zero > 0
    assert f"not activity: {zero:,} orders (zero value {zero:,}); activity.min_qualifying_amount = 0" in stdout
