"""The retention report: one self-contained HTML page drawn from a publication's marts.

Every publication carries its own report (``report.html`` in the publication's version folder,
written before the publication becomes visible, so the page and the marts always match);
``liucun report`` draws it again from any published warehouse. See flows/report/page.py.
"""

from flows.report.page import ReportMeta, gate_views, render
from flows.report.queries import MartReader

__all__ = ["MartReader", "ReportMeta", "gate_views", "render"]
