"""Serve a built book folder on loopback and read one page of it in Chromium, as a reader would.

``serve(folder)`` is a plain static file server (any static host serves the book the same way).
``read_page`` opens one page, lets every request to the server through and stops every other
one (a page of an offline book must not need it), waits until MathJax has typeset every
formula, and reports what the page showed: requests that left the site or failed, formulas,
MathJax errors, images that did not load, and the checks tables.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from playwright.sync_api import Page, Request, Route

#: Formulas as Sphinx writes them (before MathJax) and MathJax 3's output elements.
MATH_JS = """() => ({
  formulas: document.querySelectorAll('span.math, div.math').length,
  typeset: document.querySelectorAll('mjx-container').length,
  errors: [...document.querySelectorAll('mjx-merror')].map(e => e.textContent).slice(0, 5),
})"""
TYPESET_JS = """() => document.querySelectorAll('mjx-container').length
  >= document.querySelectorAll('span.math, div.math').length"""
#: Every image: whether it loaded (a broken one has naturalWidth 0).
IMAGES_JS = """() => [...document.querySelectorAll('article img')].map(img => ({
  src: img.getAttribute('src').slice(0, 80), loaded: img.complete && img.naturalWidth > 0,
  output: !!img.closest('.cell_output')}))"""
#: Every checks table: its header, rows, and the cells whose text does not fit (cut off).
TABLES_JS = """() => [...document.querySelectorAll('table.checks-table')].map(table => ({
  header: [...table.querySelectorAll('thead th')].map(th => th.textContent.trim()),
  rows: table.querySelectorAll('tbody tr').length,
  clipped: [...table.querySelectorAll('td, th')].filter(c => c.scrollWidth > c.clientWidth + 1)
    .map(c => c.textContent.slice(0, 40)),
  fontPx: parseFloat(getComputedStyle(table.querySelector('td') || table).fontSize)}))"""


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@contextmanager
def serve(folder: Path) -> Iterator[str]:
    """Serve ``folder`` at ``http://127.0.0.1:<free port>/`` (yielded) until the block ends."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@dataclass
class PageReport:
    """What one page showed. external: requests to anywhere but the server (all stopped);
    failed: requests to the server that failed or got an HTTP error; formulas / typeset: math
    elements before and after MathJax; math_errors: MathJax's error boxes; images: one record per
    image; tables: one record per checks table."""

    url: str
    external: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    formulas: int = 0
    typeset: int = 0
    math_errors: list[str] = field(default_factory=list)
    images: list[dict] = field(default_factory=list)
    tables: list[dict] = field(default_factory=list)


def read_page(page: Page, base: str, name: str, timeout_s: float) -> PageReport:
    """Open ``base + name`` in ``page`` (a fresh one: its routes and listeners stay) and report
    what it showed (see ``PageReport``). Raises Playwright's TimeoutError when the page does not
    load, or MathJax does not typeset every formula, within ``timeout_s``."""
    report = PageReport(url=base + name)

    def route(route: Route, request: Request) -> None:
        if request.url.startswith(base) or request.url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            report.external.append(request.url)
            route.abort()

    def on_response(response) -> None:
        if response.status >= 400:
            report.failed.append(f"{response.url} -> HTTP {response.status}")

    def on_failed(request: Request) -> None:
        if request.url.startswith(base):  # the stopped external ones are listed already
            report.failed.append(f"{request.url} -> {request.failure}")

    page.route("**/*", route)
    page.on("requestfailed", on_failed)
    page.on("response", on_response)
    page.goto(report.url, wait_until="load", timeout=timeout_s * 1000)
    page.wait_for_load_state("networkidle", timeout=timeout_s * 1000)
    page.wait_for_function(TYPESET_JS, timeout=timeout_s * 1000, polling=250)
    math = page.evaluate(MATH_JS)
    report.formulas, report.typeset = math["formulas"], math["typeset"]
    report.math_errors = math["errors"]
    report.images = page.evaluate(IMAGES_JS)
    report.tables = page.evaluate(TABLES_JS)
    return report
