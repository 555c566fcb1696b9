"""Open a page in the system's headless Chromium (Debian's ``chromium`` package) with networking off.

Playwright drives the browser; the browser itself is the system's (``/usr/bin/chromium``, or
``LIUCUN_CHROMIUM``): no browser download. Every request other than the page's own file is aborted
and counted, so a page that needs the network shows up as ``blocked`` requests and console errors.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest


def chromium_path() -> str:
    path = os.environ.get("LIUCUN_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        pytest.fail("headless Chromium is not installed: `apt-get install chromium` (the Makefile's "
                    "`make test` installs it when it can), or set LIUCUN_CHROMIUM to a Chromium binary")
    return path


@dataclass
class PageVisit:
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    result: Any = None  # what ``evaluate`` returned


def visit(page_file: Path, evaluate: str, screenshot: Path | None = None, timeout_ms: int = 60_000,
          clip_height: int | None = None) -> PageVisit:
    """Load ``page_file`` offline, await the JavaScript expression ``evaluate`` (it may return a
    promise) and, if asked, save a screenshot: the full page, or its top ``clip_height`` pixels."""
    from playwright.sync_api import sync_playwright

    out = PageVisit()
    url = page_file.resolve().as_uri()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"])
        try:
            context = browser.new_context(offline=True, viewport={"width": 1280, "height": 900})

            def route(r: Any) -> None:
                if r.request.url == url:
                    r.continue_()
                else:
                    out.blocked.append(r.request.url)
                    r.abort()
            context.route("**/*", route)
            page = context.new_page()
            page.on("console", lambda m: out.console_errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: out.page_errors.append(str(e)))
            page.goto(url, wait_until="load", timeout=timeout_ms)
            out.result = page.evaluate(evaluate)
            if screenshot is not None:
                screenshot.parent.mkdir(parents=True, exist_ok=True)
                clip = None if clip_height is None else {"x": 0, "y": 0, "width": 1280, "height": clip_height}
                page.screenshot(path=str(screenshot), full_page=True, clip=clip)
        finally:
            browser.close()
    return out
