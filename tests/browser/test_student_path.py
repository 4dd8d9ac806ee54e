"""The student path, end to end, in a real browser.

A student runs ``make lab``, opens a notebook and picks Run > Run All Cells. These tests do the
same in headless Chromium against a private JupyterLab from this project's venv, and fail if
any cell did not run or shows an error or a warning. A second test
inserts failing cells into a copy of a notebook and checks that they are caught, so the first
test is known to be able to fail. A third opens the student release of an exercise notebook,
types a solution into an answer cell and sees its check pass. Run with ``make test-browser``
(``BROWSER_NB=<notebook>``).
"""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import nbformat
import pytest
from lab_notebooks import (
    TINY_NOTEBOOK,
    code_cell_count,
    read_cleared,
    with_inserted_cells,
    write_notebook,
)
from lab_page import (
    CellReport,
    cell_outputs,
    notebook_path,
    open_notebook,
    problems,
    read_cells,
    replace_cell_source,
    run_all_cells,
    run_cell_and_next,
    wait_until_finished,
)
from lab_server import LabServer
from playwright.sync_api import BrowserContext, Page
from playwright.sync_api import Error as PlaywrightError

from course_utils.instructor.grading.bundle import build_bundle
from course_utils.instructor.grading.export import solution_lines
from course_utils.instructor.grading.release import release
from course_utils.paths import NOTEBOOKS_DIR

OPEN_TIMEOUT_S = 120.0  # page load + kernel start on a busy 2-core machine
RUN_TIMEOUT_S = 300.0  # all cells of a quick course notebook, with room to spare

WARNING_CELL = 'import warnings\n\nwarnings.warn("a warning the student would see")'
RAISING_CELL = 'raise RuntimeError("deliberate failure inserted by the browser test")'
EXERCISE_MASTER = NOTEBOOKS_DIR / "07_im2col_and_fold.ipynb"
EXERCISE_QUESTION = "im2col"


def save_screenshot(page: Page, path: Path) -> None:
    """Screenshot the page to ``path``; a failing screenshot must not hide the real error."""
    try:
        page.screenshot(path=str(path))
    except PlaywrightError as error:
        print(f"could not save the screenshot {path}: {error}")


def run_in_lab(lab: LabServer, browser: BrowserContext, name: str,
               screenshot: Path) -> list[CellReport]:
    """Open notebook ``name`` (in the server's root), Run All Cells, wait, read every code cell.

    The screenshot is taken even after a timeout: it shows where the run got stuck.
    """
    page = browser.new_page()
    try:
        open_notebook(page, lab.url(notebook_path(name)), OPEN_TIMEOUT_S)
        run_all_cells(page)
        wait_until_finished(page, RUN_TIMEOUT_S)
        return read_cells(page)
    except TimeoutError as error:
        failure = (f"{name}: {error}\nscreenshot: {screenshot}\n"
                   f"JupyterLab log (last lines):\n{lab.log_tail()}")
    finally:
        save_screenshot(page, screenshot)
        page.close()
    pytest.fail(failure, pytrace=False)  # outside `except`: no chained Playwright traceback


def test_student_runs_notebook(notebook_source: Path, lab: LabServer, lab_root: Path,
                               browser: BrowserContext, tmp_path: Path) -> None:
    notebook = read_cleared(notebook_source)
    write_notebook(notebook, lab_root / notebook_source.name)
    screenshot = tmp_path / f"{notebook_source.stem}.png"

    cells = run_in_lab(lab, browser, notebook_source.name, screenshot)

    # Every code cell must be on the page, or an error in a missing one would go unseen.
    assert len(cells) == code_cell_count(notebook), (
        f"the page shows {len(cells)} code cells, the notebook has {code_cell_count(notebook)}")
    found = problems(cells)
    assert not found, (f"{notebook_source.name} in JupyterLab:\n  " + "\n  ".join(found)
                       + f"\nscreenshot: {screenshot}")
    assert screenshot.is_file()


def test_failing_cells_are_caught(lab: LabServer, lab_root: Path, browser: BrowserContext,
                                  tmp_path: Path) -> None:
    # Cells 0 and 1 of the tiny notebook are markdown and code: insert after the first code cell.
    broken = with_inserted_cells(read_cleared(TINY_NOTEBOOK), 2, [WARNING_CELL, RAISING_CELL])
    name = "tiny_notebook_broken.ipynb"
    write_notebook(broken, lab_root / name)

    cells = run_in_lab(lab, browser, name, tmp_path / "tiny_notebook_broken.png")
    found = problems(cells)

    assert cells[0].ran and not cells[0].stderr  # the cell before the inserted ones is fine
    assert not cells[1].has_error and cells[2].has_error  # a warning is not an error
    assert found[0].startswith("code cell 2 ('import warnings') shows a warning: ")
    assert found[0].endswith("UserWarning: a warning the student would see'")
    assert found[1].startswith("code cell 3 ('raise RuntimeError")
    assert "shows an error: 'RuntimeError: deliberate failure inserted" in found[1]
    # Run All stops at the error: every later cell must be reported as not run.
    not_run = [line for line in found[2:] if "did not run" in line]
    assert len(not_run) == len(cells) - 3 == len(found) - 2


def test_student_writes_an_answer_and_the_check_passes(lab: LabServer, lab_root: Path,
                                                       browser: BrowserContext,
                                                       tmp_path: Path) -> None:
    """The exercise loop in notebook 07 as the student bundle's zip holds it: Run All stops at
    the first cell that needs the missing answer; the check below the im2col answer cell says
    it failed; the student types the solution into that cell, runs it and its check: "passed"."""
    dist = tmp_path / "dist"
    release(EXERCISE_MASTER, dist)
    _, archive = build_bundle(dist, [EXERCISE_MASTER])
    name = EXERCISE_MASTER.stem
    unpacked = tmp_path / "unpacked"
    with zipfile.ZipFile(archive) as bundle:
        bundle.extractall(unpacked)
    shipped = next(unpacked.rglob(f"{name}.ipynb")).parent  # notebooks/<name>/ in the zip
    shutil.copytree(shipped, lab_root / "student")
    student = read_cleared(lab_root / "student" / f"{name}.ipynb")
    solution = nbformat.read(dist / "autograder" / name / f"{name}.ipynb", as_version=4)
    code = [c for c in student.cells if c.cell_type == "code"]
    answer = next(i for i, c in enumerate(code) if "def im2col_matrix(" in c.source)
    assert "otter_answer_cell" in code[answer].metadata.get("tags", [])
    assert code[answer + 1].source.strip() == f'grader.check("{EXERCISE_QUESTION}")'
    master_cell = next(c.source for c in solution.cells if c.cell_type == "code"
                       and "def im2col_matrix(" in c.source)
    typed = "\n".join(solution_lines(master_cell.splitlines()))  # what a student would write
    assert "NotImplementedError" in code[answer].source and "NotImplementedError" not in typed
    # the usual first mistake: the kernel offsets (i, j) swapped (right shape, wrong values)
    right_slice = ("padded[:, :, i:i + stride * hout:stride,\n"
                   "                                   j:j + stride * wout:stride]")
    assert right_slice in typed
    wrong = typed.replace(right_slice, right_slice.replace("i:i", "@").replace("j:j", "i:i")
                          .replace("@", "j:j"))

    page = browser.new_page()
    screenshot = tmp_path / "student_answer.png"
    try:
        open_notebook(page, lab.url(notebook_path(f"student/{name}.ipynb")), OPEN_TIMEOUT_S)
        run_all_cells(page)
        wait_until_finished(page, RUN_TIMEOUT_S)
        before = "\n".join(cell_outputs(page, answer + 1))
        replace_cell_source(page, answer, wrong)
        run_cell_and_next(page, answer, RUN_TIMEOUT_S)
        mistaken = "\n".join(cell_outputs(page, answer + 1))
        replace_cell_source(page, answer, typed)
        run_cell_and_next(page, answer, RUN_TIMEOUT_S)
        after = "\n".join(cell_outputs(page, answer + 1))
    finally:
        save_screenshot(page, screenshot)
        page.close()
    assert "NotImplementedError" in before and "passed" not in before, before
    # a wrong answer is told the input, what was expected, what came back, and a hint that
    # does not write the answer
    assert "im2col_matrix(array of shape" in mistaken and "should copy" in mistaken, mistaken
    assert "got" in mistaken and "Hint:" in mistaken and "passed" not in mistaken, mistaken
    squeezed = "".join(mistaken.split())
    assert not [line for line in typed.splitlines() if len("".join(line.split())) >= 20
                and "".join(line.split()) in squeezed and "def " not in line], mistaken
    assert f"{EXERCISE_QUESTION} passed" in after, after
    assert "NotImplementedError" not in after, after
