"""Marts gate suites for the risk marts (registered in the marts layer by expectations.suites)."""

from __future__ import annotations

from expectations.suites import TableSuite

SUITES: list[TableSuite] = []
