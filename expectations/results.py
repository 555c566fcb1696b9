"""What a gate found: each expectation's outcome, the layer's verdict, and the report text.

Plain data with no Great Expectations import, so that the run's own process can read a gate's
result (and raise :class:`GateFailed`) while GX itself lives in the gate worker (flows/gates/worker.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass
class ExpectationOutcome:
    table: str
    expectation: str
    column: str | None
    description: str | None
    severity: str
    success: bool
    evaluated: bool
    unexpected_count: int | None
    element_count: int | None
    observed: Any
    sample: list[Any]
    error: str | None


@dataclass
class GateResult:
    layer: str
    outcomes: list[ExpectationOutcome] = field(default_factory=list)
    skipped_tables: list[str] = field(default_factory=list)

    @property
    def evaluated(self) -> int:
        return sum(o.evaluated for o in self.outcomes)

    @property
    def blocking_failures(self) -> list[ExpectationOutcome]:
        return [o for o in self.outcomes if o.severity == "blocking" and (not o.success or not o.evaluated)]

    @property
    def warnings(self) -> list[ExpectationOutcome]:
        return [o for o in self.outcomes if o.severity == "warning" and not o.success]

    @property
    def passed(self) -> bool:
        return self.evaluated > 0 and not self.blocking_failures

    def summary(self) -> str:
        return (
            f"gate {self.layer}: {'PASSED' if self.passed else 'FAILED'} — {self.evaluated} "
            f"expectations evaluated on {len({o.table for o in self.outcomes})} tables, "
            f"{len(self.blocking_failures)} blocking failures, {len(self.warnings)} warnings"
        )

    def failure_message(self) -> str:
        if self.evaluated == 0:
            return f"gate {self.layer} evaluated no expectations: nothing was checked, so nothing may be published"
        lines = [self.summary()]
        for o in self.blocking_failures:
            lines.append("  - " + describe(o))
        return "\n".join(lines)

    def to_markdown(self) -> str:
        out = [f"# Validation report: {self.layer} layer", "", self.summary(), ""]
        out += ["| result | severity | table | expectation | column | unexpected / total | observed |",
                "|---|---|---|---|---|---|---|"]
        for o in self.outcomes:
            res = "ERROR" if not o.evaluated else ("pass" if o.success else "FAIL")
            counts = f"{o.unexpected_count} / {o.element_count}" if o.unexpected_count is not None else ""
            obs = _short(o.observed)
            out.append(f"| {res} | {o.severity} | {o.table} | {o.description or o.expectation} | "
                       f"{o.column or ''} | {counts} | {obs} |")
        bad = [o for o in self.outcomes if (not o.success or not o.evaluated) and (o.sample or o.error)]
        if bad:
            out += ["", "## Failing rows (samples)", ""]
            for o in bad:
                out.append(f"- **{o.table}** `{o.expectation}` {o.column or ''}: "
                           f"{_short(o.error or o.sample, 600)}")
        if self.skipped_tables:
            out += ["", f"Tables absent from this warehouse (not validated): {', '.join(self.skipped_tables)}"]
        return "\n".join(out) + "\n"


class GateFailed(RuntimeError):
    def __init__(self, result: GateResult):
        super().__init__(result.failure_message())
        self.result = result


def _short(value: Any, limit: int = 120) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    text = text.replace("|", "\\|").replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def describe(o: ExpectationOutcome) -> str:
    where = f"{o.table}.{o.column}" if o.column else o.table
    what = o.description or o.expectation
    if not o.evaluated:
        return f"{where}: `{o.expectation}` ({what}) could not be evaluated: {o.error}"
    if o.unexpected_count is not None and o.element_count is not None:
        counts = f"{o.unexpected_count} of {o.element_count} rows unexpected"
    elif o.unexpected_count is not None:
        counts = f"{o.unexpected_count} unexpected rows"
    else:
        counts = f"observed {_short(o.observed)}"
    sample = f"; e.g. {_short(o.sample, 200)}" if o.sample else ""
    return f"{where}: `{o.expectation}` failed ({what}): {counts}{sample}"
