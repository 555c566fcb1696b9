"""Draw a publication's report: read its marts through the engine, render the page, put it in place.

:func:`render_prepared` runs in the flow after every gate passed and before the publication is
made visible: the page goes into the prepared publication's version folder, so it becomes visible
with the marts it was drawn from (and a failed run leaves the last good page where it was).
:func:`render_current` draws the current publication's page again (``liucun report``).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from flows.engines.base import Engine
from flows.publish.warehouse import write_atomically
from flows.report.page import ReportMeta, gate_views, render
from flows.report.queries import MartReader
from flows.settings import Settings


def docs_url(settings: Settings | None = None) -> str:
    """Where the report's mart links point: LIUCUN_DOCS_URL (a team's hosted dbt docs), else the
    site `make docs` builds in this checkout."""
    settings = settings or Settings()
    if settings.docs_url:
        return settings.docs_url.rstrip("/")
    return (settings.dbt_project_dir / "target" / "index.html").resolve().as_uri()


def render_prepared(engine: Engine, prepared: Any, run_id: str, as_of: date, reports: Path) -> int:
    """Render the prepared publication's page and write it into that publication; its size in bytes."""
    meta = ReportMeta(version=prepared.version, run_id=run_id, as_of=as_of.isoformat(), engine=engine.name,
                      gates=gate_views(reports), docs_url=docs_url())
    with engine.open_publication(prepared) as con:
        html = render(MartReader(con), meta)
    engine.write_report(prepared, html)
    return len(html.encode("utf-8"))


def render_current(engine: Engine, out: Path) -> ReportMeta:
    """Render the current publication's page into ``out`` (LookupError when nothing is published)."""
    with engine.open_publication() as con:
        row = con.execute("select run_id, version, published_at, as_of_date from audit.publications "
                          "order by published_at desc limit 1").fetchone()
        if row is None:
            raise LookupError("the publication records no run (audit.publications is empty)")
        run_id, version, published_at, as_of = row
        meta = ReportMeta(version=str(version), run_id=str(run_id), as_of=str(as_of), engine=engine.name,
                          published_at=f"{published_at:%Y-%m-%d %H:%M} UTC",
                          gates=gate_views(engine.report_dir(str(run_id))), docs_url=docs_url())
        html = render(MartReader(con), meta)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(out, html, "report")  # a reader never sees half a page
    return meta


def artifact_markdown(summary: dict[str, Any], page: str | None) -> str:
    """The Prefect artifact of a run's report: the headline and where the page is."""
    h = summary.get("headline") or {}
    lines = [f"# Retention report — as of {summary['as_of']}", "",
             f"Publication `{summary['version']}`, run `{summary['run_id']}`.", ""]
    if h:
        crr = h.get("crr")
        strict = h.get("strict_retention_rate")
        period = h["period_start"] if h.get("period_grain", "month") == "month" else \
            f"{h['period_grain']} of {h['period_start']}"
        lines += ["| period | S | E | N | CRR = (E − N) / S | strict retention |", "|---|---|---|---|---|---|",
                  f"| {period} | {h['customers_start']:,} | {h['customers_end']:,} | {h['customers_new']:,} "
                  f"| {'—' if crr is None else f'{crr:.1%}'} | {'—' if strict is None else f'{strict:.1%}'} |", ""]
    if page:
        lines.append(f"Report page (self-contained HTML, opens offline): `{page}`")
    else:
        lines.append("No report page for this publication (rendering failed; see the run's log). "
                     "`liucun report --warehouse DIR` draws it again.")
    gates = summary.get("gates") or {}
    if gates:
        lines += ["", "Gates: " + ", ".join(f"{k} {'passed' if g['passed'] else 'FAILED'} ({g['evaluated']} checks, "
                                           f"{g['warnings']} warnings)" for k, g in gates.items())]
    return "\n".join(lines) + "\n"
