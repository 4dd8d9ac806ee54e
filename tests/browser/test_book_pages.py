"""The course book in a real browser (issue 20): every page of both editions, served by a plain
static server, loads in headless Chromium with no request leaving the site and none failing;
MathJax typesets every formula (its ``mjx-container`` elements exist, no error box); every
image loads, a figure and a checks table are visible and the table's cells show whole; the
search finds a chapter. Each edition is served under a sub-path. One screenshot is kept:
``runs/test/book/student-07.png``.

The book is the one ``make book`` built (``make test-browser`` runs it first and sets
``COURSE_BOOK_DIR``), or, without that variable, one built here into a temporary folder.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from book_site import PageReport, read_page, serve
from playwright.sync_api import BrowserContext
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from course_utils.instructor import book
from course_utils.instructor.grading.export import cell_source
from course_utils.paths import PROJECT_ROOT

BOOK_DIR_ENV = "COURSE_BOOK_DIR"
PAGE_TIMEOUT_S = 60.0  # a chapter and MathJax on a busy 2-core machine
SCREENSHOT = PROJECT_ROOT / "runs" / "test" / "book" / "student-07.png"
INLINE_MATH = re.compile(r"\$[^$\n]+\$")  # a formula in a notebook's markdown
#: Chapters that end with a "Checks against the report" table and hold a figure.
CHAPTERS = [p.stem for p in book.course_notebooks()]


@pytest.fixture(scope="session")
def book_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The built book: ``$COURSE_BOOK_DIR`` (``make book``'s) or a fresh build."""
    given = os.environ.get(BOOK_DIR_ENV)
    if given:
        folder = Path(given)
        missing = [e for e in book.EDITIONS if not (folder / e / "index.html").is_file()]
        assert not missing, f"{BOOK_DIR_ENV}={given} lacks {missing}: run `make book` first"
        return folder
    out = tmp_path_factory.mktemp("book")
    book.build_book(out)
    return out


@pytest.fixture(scope="session", params=book.EDITIONS)
def site(request: pytest.FixtureRequest, book_dir: Path) -> Iterator[tuple[str, Path, str]]:
    """(edition, folder, base URL) of one edition, served on loopback under a sub-path
    (``/<edition>/``, as a host serving several folders would): a request outside it, even to
    the other edition, counts as leaving the site."""
    with serve(book_dir) as root:
        yield request.param, book_dir / request.param, f"{root}{request.param}/"


@pytest.fixture(scope="session")
def reports(site: tuple[str, Path, str], browser: BrowserContext) -> dict[str, PageReport]:
    """Every top-level page of the edition, each read in a fresh tab: ``{file name: report}``."""
    _, folder, base = site
    found = {}
    for path in sorted(folder.glob("*.html")):
        page = browser.new_page()
        try:
            found[path.name] = read_page(page, base, path.name, PAGE_TIMEOUT_S)
        finally:
            page.close()
    return found


def test_every_page_loads_with_no_external_or_failed_request(
        site: tuple[str, Path, str], reports: dict[str, PageReport]) -> None:
    assert {f"{c}.html" for c in CHAPTERS} <= set(reports), sorted(reports)
    bad = {name: r.external + r.failed for name, r in reports.items() if r.external or r.failed}
    assert not bad, f"{site[0]} edition: requests that left the site or failed: {bad}"


def test_every_formula_is_typeset_without_error(site: tuple[str, Path, str],
                                                reports: dict[str, PageReport]) -> None:
    with_math = {n: r for n, r in reports.items() if r.formulas}
    expected = {f"{p.stem}.html" for p in book.course_notebooks() if INLINE_MATH.search(
        " ".join(cell_source(c) for c in json.loads(p.read_text(encoding="utf-8"))["cells"]
                 if c["cell_type"] == "markdown"))}
    assert expected and expected <= set(with_math), f"formulas only on {sorted(with_math)}"
    for name, report in with_math.items():
        assert report.typeset >= report.formulas > 0, f"{name}: {report}"
        assert not report.math_errors, f"{name}: MathJax errors {report.math_errors}"


def test_every_image_loads_and_every_chapter_has_a_figure(
        reports: dict[str, PageReport]) -> None:
    broken = {n: [i["src"] for i in r.images if not i["loaded"]] for n, r in reports.items()}
    assert not any(broken.values()), broken
    without = [c for c in CHAPTERS if not any(i["output"] for i in reports[f"{c}.html"].images)]
    assert not without, f"chapters with no figure in their outputs: {without}"


def test_checks_tables_show_whole(reports: dict[str, PageReport]) -> None:
    for chapter in CHAPTERS:
        tables = reports[f"{chapter}.html"].tables
        assert tables, f"{chapter}: no checks table"
        for table in tables:
            assert table["header"][:1] == ["match"] and table["rows"] > 0, (chapter, table)
            assert not table["clipped"], f"{chapter}: cells cut off: {table['clipped']}"
            assert table["fontPx"] >= 10, (chapter, table["fontPx"])


def test_search_finds_a_chapter(site: tuple[str, Path, str], browser: BrowserContext) -> None:
    _, _, base = site
    page = browser.new_page()
    try:
        read_page(page, base, "search.html?q=im2col", PAGE_TIMEOUT_S)
        page.wait_for_selector("#search-results li a", timeout=PAGE_TIMEOUT_S * 1000)
        hits = page.eval_on_selector_all("#search-results li a",
                                         "links => links.map(a => a.getAttribute('href'))")
    finally:
        page.close()
    assert any(h.startswith("07_im2col_and_fold.html") for h in hits), hits


def test_screenshot_of_a_figure_and_a_formula(site: tuple[str, Path, str],
                                              browser: BrowserContext) -> None:
    """A figure, a formula and the visible checks table, each scrolled into view; the student
    edition's chapter 07 page is kept as a screenshot to look at."""
    edition, _, base = site
    page = browser.new_page()
    try:
        read_page(page, base, "07_im2col_and_fold.html", PAGE_TIMEOUT_S)
        for selector in ("table.checks-table", "mjx-container", ".cell_output img"):
            element = page.locator(selector).first
            element.scroll_into_view_if_needed()
            assert element.is_visible(), f"{edition}: {selector} is not visible"
            box = element.bounding_box()
            assert box and box["width"] > 5 and box["height"] > 5, (selector, box)
        if edition == "student":
            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOT))
    finally:
        page.close()


def test_an_external_script_a_missing_file_and_untypeset_math_are_caught(
        tmp_path: Path, browser: BrowserContext) -> None:
    """The checks above can fail: a page that loads a script from another site and an image
    that is not there, and whose formula no MathJax typesets."""
    (tmp_path / "bad.html").write_text(
        '<html><body><article><script src="https://cdn.example.org/x.js"></script>'
        '<img src="missing.png"><span class="math">\\(x^2\\)</span></article></body></html>',
        encoding="utf-8")
    page = browser.new_page()
    try:
        with serve(tmp_path) as base, pytest.raises(PlaywrightTimeoutError):
            read_page(page, base, "bad.html", timeout_s=5)
        page.close()
        page = browser.new_page()
        (tmp_path / "bad.html").write_text(
            (tmp_path / "bad.html").read_text().replace('<span class="math">', "<span>"))
        with serve(tmp_path) as base:
            report = read_page(page, base, "bad.html", timeout_s=20)
    finally:
        page.close()
    assert report.external == ["https://cdn.example.org/x.js"]
    assert any("missing.png -> HTTP 404" in f for f in report.failed), report.failed
    assert [i["loaded"] for i in report.images] == [False]
