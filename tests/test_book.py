"""The course book (``make book``, issue 20): the student edition holds no answer, the
instructor edition holds every one, and nothing on a page is loaded from the internet.

Both editions are built once into a temporary folder from the session's release
(``course_release``), and searched with the student bundle's leak check (tests/leak_scan.py):
the built site (HTML read as the text it shows, search index, scripts) and the notebooks the
edition was built from (raw markdown: a written answer renders differently in HTML).
The pages in a real browser: tests/browser/test_book_pages.py (``make test-browser``).
"""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import re
from pathlib import Path

import pytest
from leak_scan import MASTERS, find_leaks, page_text, secrets

from course_utils.instructor import book
from course_utils.instructor.grading.export import cell_source

#: A page element that makes the browser fetch something: <script src>, <link href>, <img src>...
FETCHING_TAG = re.compile(r"<(script|link|img|iframe|source|video|audio|embed)\b[^>]*?"
                          r"\b(src|href)=[\"']?(https?:)?//", re.IGNORECASE)


def _require_book_extra() -> None:
    """Skip without jupyter-book (the ``book`` extra), except under CI, which installs it."""
    if importlib.util.find_spec("jupyter_book") is None:
        if os.environ.get("CI"):
            pytest.fail("jupyter-book is missing: CI installs the book extra (make install)")
        pytest.skip("the book extra is not installed (pip install -e '.[book]')")


@pytest.fixture(scope="module")
def built(course_release: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Both editions, built from the session's release: ``{edition: site folder}``."""
    _require_book_extra()
    out = tmp_path_factory.mktemp("book")
    return book.build_book(out, release_dir=course_release / "student")


@pytest.fixture(scope="module")
def sources(course_release: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The folders each edition is built from (config and notebook copies), as book.py writes
    them for jupyter-book."""
    _require_book_extra()
    found = {}
    for edition in book.EDITIONS:
        folder = tmp_path_factory.mktemp(f"book-source-{edition}")
        book.write_source(edition, folder, book.course_notebooks(), course_release / "student")
        found[edition] = folder
    return found


def test_toc_lists_every_notebook_in_course_order() -> None:
    assert book.toc_files() == [p.stem for p in book.course_notebooks()]


def test_a_toc_out_of_order_stops_the_build(tmp_path: Path) -> None:
    notebooks = book.course_notebooks()
    with pytest.raises(ValueError, match="edit book/_toc.yml"):
        book.check_toc(list(reversed(notebooks)))


def test_every_chapter_is_a_page_of_both_editions(built: dict[str, Path]) -> None:
    for edition, site in built.items():
        pages = {p.stem for p in site.glob("*.html")}
        missing = {p.stem for p in book.course_notebooks()} - pages
        assert not missing, f"{edition} edition lacks {missing}"
        assert (site / "index.html").is_file() and (site / "searchindex.js").is_file()


@pytest.mark.parametrize("where", ["site", "source"])
def test_student_edition_holds_no_solution_or_hidden_test(built: dict[str, Path],
                                                          sources: dict[str, Path],
                                                          where: str) -> None:
    folder = built["student"] if where == "site" else sources["student"]
    leaks = find_leaks(folder, secrets())
    assert not leaks, f"the student edition's {where} holds answers:\n" + "\n".join(leaks[:40])


def test_student_site_ships_no_notebook_or_source_copy(built: dict[str, Path]) -> None:
    files = [p.relative_to(built["student"]) for p in built["student"].rglob("*") if p.is_file()]
    assert not [f for f in files if f.suffix in (".ipynb", ".py") or "_sources" in f.parts]


def test_instructor_edition_holds_every_solution_and_hidden_test(
        built: dict[str, Path], sources: dict[str, Path]) -> None:
    items = [s for s in secrets() if "hidden tests only" not in s.source]  # those are in .py
    found = find_leaks(sources["instructor"], items)
    missing = [s for s in items if not any(repr(s.text) in line for line in found)]
    assert not missing, f"the instructor edition lacks {len(missing)} lines, e.g. {missing[:3]}"
    on_pages = " ".join(find_leaks(built["instructor"], items))
    assert all(f"({m.name} " in on_pages for m in MASTERS), "a master's solutions show on no page"


def test_a_highlighted_solution_line_on_a_page_is_found(built: dict[str, Path],
                                                        tmp_path: Path) -> None:
    from pygments import highlight
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import PythonLexer

    planted = next(s for s in secrets() if "solution" in s.source and "(" in s.text)
    page = tmp_path / "07_im2col_and_fold.html"
    raw = (built["student"] / page.name).read_text(encoding="utf-8")
    code = highlight(planted.text, PythonLexer(), HtmlFormatter())  # one <span> per token
    assert planted.text not in code and planted.text in page_text(code)
    page.write_text(raw.replace("</main>", code + "</main>", 1), encoding="utf-8")
    assert any(planted.text in leak for leak in find_leaks(tmp_path, [planted]))


def test_no_page_loads_anything_from_another_site(built: dict[str, Path]) -> None:
    for edition, site in built.items():
        fetching = [f"{p.relative_to(site)}: {m.group(0)[:120]}" for p in site.rglob("*.html")
                    for m in FETCHING_TAG.finditer(p.read_text(encoding="utf-8"))]
        assert not fetching, f"{edition} edition: {fetching[:10]}"
        assert (site / "_static" / "mathjax" / book.MATHJAX_COMPONENT).is_file()
        chapter = (site / "07_im2col_and_fold.html").read_text(encoding="utf-8")
        assert 'src="_static/mathjax/tex-chtml.js"' in chapter


def test_the_fetching_tag_pattern_finds_a_cdn_script() -> None:
    assert FETCHING_TAG.search('<script defer src="https://cdn.example/mathjax.js"></script>')
    assert FETCHING_TAG.search("<link rel=stylesheet href=//fonts.example/css>")
    assert not FETCHING_TAG.search('<a href="https://example.org">a plain link</a>')


# --- the student edition's output rule, on a made-up master --------------------------------

def _cell(kind: str, source: str, outputs: list | None = None) -> dict:
    cell = {"cell_type": kind, "metadata": {}, "source": source}
    if kind == "code":
        cell.update(outputs=outputs or [], execution_count=1 if outputs else None)
    return cell


def _stream(text: str) -> dict:
    return {"output_type": "stream", "name": "stdout", "text": text}


SECRET = "return x.reshape(n, -1) @ w"
MASTER = {"metadata": {}, "cells": [
    _cell("code", "#| default_exp instructor.solutions.demo\nsetup = 1", [_stream("set up\n")]),
    _cell("raw", "# BEGIN QUESTION\nname: q1"),
    _cell("raw", "# BEGIN SOLUTION"),
    _cell("code", f"def f(x, w):\n    {SECRET}", [_stream("f defined\n")]),
    _cell("raw", "# END SOLUTION"),
    _cell("raw", "# BEGIN TESTS"),
    _cell("code", "test_f(f)", [_stream("the answer is 42\n")]),
    _cell("raw", "# END TESTS"),
    _cell("raw", "# END QUESTION"),
    _cell("code", "print(f(x, w))", [_stream("[[1. 2.]]\n")]),
    _cell("code", "import inspect; print(inspect.getsource(f))", [_stream(SECRET + "\n")]),
]}
STUDENT = {"metadata": {}, "cells": [
    _cell("code", "import otter"),
    _cell("code", "setup = 1"),
    _cell("code", "def f(x, w):\n    ..."),
    _cell("code", 'grader.check("q1")'),
    _cell("code", "print(f(x, w))"),
    _cell("code", "import inspect; print(inspect.getsource(f))"),
]}


def test_student_cells_get_only_given_outputs_without_solutions() -> None:
    student = copy.deepcopy(STUDENT)
    dropped = book.graft_outputs(student, copy.deepcopy(MASTER), [SECRET], "demo.ipynb")
    texts = [[o["text"] for o in c["outputs"]] for c in student["cells"]]
    assert texts == [[], ["set up\n"], [], [], ["[[1. 2.]]\n"], []]
    assert dropped == ["demo.ipynb, cell 6: an output holds a solution line"]


def test_a_given_cell_missing_from_the_release_stops_the_build() -> None:
    student = copy.deepcopy(STUDENT)
    del student["cells"][1]  # "setup = 1", which has outputs in the master
    with pytest.raises(ValueError, match="no twin in the student release"):
        book.graft_outputs(student, copy.deepcopy(MASTER), [SECRET], "demo.ipynb")


def test_widget_views_are_reduced_to_their_text() -> None:
    notebook = {"metadata": {"widgets": {"state": {}}}, "cells": [_cell("code", "x", [
        {"output_type": "display_data", "metadata": {},
         "data": {book.WIDGET_MIME: {"model_id": "m"}, "text/plain": "10/10 done"}},
        {"output_type": "display_data", "metadata": {}, "data": {book.WIDGET_MIME: {}}}])]}
    cleaned = book.offline_notebook(notebook)
    assert "widgets" not in cleaned["metadata"]
    assert [o["data"] for o in cleaned["cells"][0]["outputs"]] == [{"text/plain": "10/10 done"}]


def test_instructor_notebook_shows_otters_raw_cells() -> None:
    master = next(p for p in MASTERS if p.stem.startswith("07"))
    cells = book.instructor_notebook(master)["cells"]
    raw = [c for c in json.loads(master.read_text(encoding="utf-8"))["cells"]
           if c["cell_type"] == "raw"]
    assert not [c for c in cells if c["cell_type"] == "raw"]
    shown = [cell_source(c) for c in cells if cell_source(c).startswith("````text\n")]
    assert len(shown) == len(raw) and any("# BEGIN QUESTION" in s for s in shown)


def _image_outputs(cells: list[dict]) -> int:
    return sum(1 for c in cells if c["cell_type"] == "code" for o in c.get("outputs", [])
               if "image/png" in o.get("data", {}))


def test_every_figure_of_the_masters_is_on_its_page(built: dict[str, Path]) -> None:
    """Every PNG output of a master is an image of its chapter in the instructor edition, and
    every one of its given code in the student edition (the masters store none elsewhere)."""
    for notebook in book.course_notebooks():
        master = json.loads(notebook.read_text(encoding="utf-8"))
        expected = {"instructor": _image_outputs(master["cells"]),
                    "student": _image_outputs(book.given_cells(master))}
        assert expected["instructor"] > 0, f"{notebook.name} draws no figure"
        for edition, count in expected.items():
            page = (built[edition] / f"{notebook.stem}.html").read_text(encoding="utf-8")
            images = re.findall(r'<img[^>]+src="_images/[^"]+\.png"', page)
            assert len(images) == count, (edition, notebook.name, len(images), count)
