"""The README's picture of the report: the top of a warehouse's current report page, as headless
Chromium draws it (``make readme-screenshot`` after ``make demo``). The image is this code's output,
never edited by hand.

    python -m tests.support.readme_screenshot WAREHOUSE OUT.png
"""

from __future__ import annotations

import sys
from pathlib import Path

from tests.support.browser import visit


def main(warehouse: Path, out: Path) -> None:
    page = warehouse / "parquet" / "current" / "report.html"
    if not page.is_file():
        raise SystemExit(f"{page} does not exist: run `make demo` first")
    seen = visit(page, "window.liucunReport.ready.then(() => true)", screenshot=out, clip_height=1900)
    if seen.console_errors or seen.page_errors or seen.blocked:
        raise SystemExit(f"the page did not draw cleanly: {seen.console_errors} {seen.page_errors} {seen.blocked}")
    print(f"{out} ({out.stat().st_size / 1e3:.0f} kB) from {page.resolve()}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
