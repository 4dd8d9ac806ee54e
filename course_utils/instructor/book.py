"""``make book``: the course as a static HTML site, in a student and an instructor edition.

Built with jupyter-book 1 (Sphinx, myst-nb, sphinx-book-theme) from the committed, executed
notebooks: nothing is re-executed, the stored outputs are the results. The committed
``book/_config.yml``, ``book/_toc.yml`` and ``book/intro.md`` are copied, per edition, beside
that edition's notebook copies into a source folder, which jupyter-book turns into
``<out>/<edition>/`` (``index.html`` at the top; any static host serves the folder as it is).

- **instructor**: every master as it is; otter's raw marker cells (question configs, solution
  and test markers) shown as text blocks, so nothing is hidden.
- **student**: each exercise notebook as ``make release`` writes it (``dist/student/``: the
  question, the stub, the public ``grader.check`` cell, no instructor block, no solution), with
  the master's stored outputs put back by one rule, per code cell: a released cell gets the
  outputs of the master cell with the same source (``#| default_exp`` lines ignored) only if
  that master cell lies outside every question (``# BEGIN QUESTION`` ... ``# END QUESTION``),
  i.e. it is given code, and only the outputs whose text holds no line of the master's
  solutions (``release.solution_texts``). So an answer cell, a test and a check print nothing;
  given code shows what the master's run printed and drew. Notebooks without exercises are
  the master with its instructor blocks removed.

Offline: MathJax 3 is copied from the ``django-static-mathjax`` package into the site's
``_static/mathjax/`` (``mathjax_path``); launch buttons, thebe, comments, intersphinx, widget
scripts and source copies are off (``book/_config.yml``), and widget outputs (tqdm's progress
bars) are replaced by their text.
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

from course_utils.atomic import atomic_write_json, atomic_write_text
from course_utils.instructor.grading.export import cell_source
from course_utils.instructor.grading.release import (
    DIRECTIVE_LINE,
    is_master_notebook,
    release_all,
    solution_texts,
    speak_to_students,
)
from course_utils.paths import PROJECT_ROOT

BOOK_DIR = PROJECT_ROOT / "book"
DEFAULT_OUT = BOOK_DIR / "_build"
EDITIONS = ("student", "instructor")
CONFIG_FILES = ("_config.yml", "_toc.yml", "intro.md")
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
#: What this build copies from the MathJax 3 distribution (es5/): the component the pages
#: load, and everything it may load on demand (TeX extensions, fonts, menu, accessibility).
MATHJAX_COMPONENT = "tex-chtml.js"
MATHJAX_PARTS = (MATHJAX_COMPONENT, "input", "output/chtml", "output/chtml.js", "a11y", "ui",
                 "sre", "adaptors", "../LICENSE")


def course_notebooks() -> list[Path]:
    """Every ``notebooks/*.ipynb``, in course order (the file names' number prefix)."""
    return sorted((PROJECT_ROOT / "notebooks").glob("*.ipynb"))


def toc_files(toc: Path = BOOK_DIR / "_toc.yml") -> list[str]:
    """The chapter file names of ``_toc.yml``, in order."""
    data = yaml.safe_load(toc.read_text(encoding="utf-8"))
    return [chapter["file"] for chapter in data.get("chapters", [])]


def check_toc(notebooks: list[Path]) -> None:
    """ValueError unless ``book/_toc.yml`` lists exactly ``notebooks``, in that order."""
    listed, expected = toc_files(), [p.stem for p in notebooks]
    if listed != expected:
        raise ValueError(f"book/_toc.yml lists {listed}, but the course is {expected}: edit "
                         "book/_toc.yml so its chapters are the notebooks, in course order")


def mathjax_source() -> Path:
    """MathJax 3's ``es5/`` folder, as the ``django-static-mathjax`` package installs it.

    Raises FileNotFoundError naming the install command when the package is missing.
    """
    spec = importlib.util.find_spec("mathjax")
    folder = Path(spec.origin).parent / "static" / "mathjax" / "es5" if spec and spec.origin \
        else None
    if folder is None or not (folder / MATHJAX_COMPONENT).is_file():
        raise FileNotFoundError("MathJax 3 not found (the django-static-mathjax package): "
                                "install the book extra, `pip install -e '.[book]'` "
                                "(make install does)")
    return folder


def copy_mathjax(static: Path) -> None:
    """Copy the MathJax files the pages load into ``static/mathjax/`` (no CDN at view time)."""
    source, target = mathjax_source(), static / "mathjax"
    for part in MATHJAX_PARTS:
        origin = (source / part).resolve()
        destination = target / Path(part).name if part.startswith("..") else target / part
        destination.parent.mkdir(parents=True, exist_ok=True)
        if origin.is_dir():
            shutil.copytree(origin, destination)
        else:
            shutil.copy2(origin, destination)


def plain_outputs(outputs: list[dict]) -> list[dict]:
    """``outputs`` with widget views (which need scripts from the internet) reduced to the
    text they carry; a widget with no text is left out."""
    kept = []
    for output in outputs:
        data = output.get("data", {})
        if WIDGET_MIME in data:
            output = copy.deepcopy(output)
            del output["data"][WIDGET_MIME]
            if not output["data"]:
                continue
        kept.append(output)
    return kept


def offline_notebook(notebook: dict) -> dict:
    """The notebook without widget state or widget views (see ``plain_outputs``)."""
    notebook["metadata"].pop("widgets", None)
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code":
            cell["outputs"] = plain_outputs(cell.get("outputs", []))
    return notebook


def instructor_notebook(master: Path) -> dict:
    """The master with its raw cells (otter's markers and configs) turned into text blocks."""
    notebook = json.loads(master.read_text(encoding="utf-8"))
    for cell in notebook["cells"]:
        if cell["cell_type"] == "raw":
            cell["cell_type"] = "markdown"
            cell["source"] = f"````text\n{cell_source(cell).rstrip()}\n````"
            cell.pop("outputs", None)
            cell.pop("execution_count", None)
    return offline_notebook(notebook)


def given_cells(master: dict) -> list[dict]:
    """The master's code cells outside every question block: the given code, whose outputs a
    student may see. Cells between ``# BEGIN QUESTION`` and ``# END QUESTION`` (answers,
    tests) are never among them."""
    given, depth = [], 0
    for cell in master["cells"]:
        text = cell_source(cell).strip()
        if cell["cell_type"] == "raw":
            depth += text.startswith("# BEGIN QUESTION") - text.startswith("# END QUESTION")
        elif cell["cell_type"] == "code" and depth == 0:
            given.append(cell)
    return given


def _source_key(cell: dict) -> str:
    return DIRECTIVE_LINE.sub("", cell_source(cell)).strip()


def output_text(output: dict) -> str:
    """Every text an output carries (stream, plain, HTML, LaTeX, error), joined."""
    parts = [output.get("text", "")] + [output.get("evalue", "")] + output.get("traceback", [])
    for mime, value in output.get("data", {}).items():
        if mime.startswith("text/") or mime.endswith("json"):
            parts.append(value if isinstance(value, str) else json.dumps(value))
    return "\n".join("".join(part) if isinstance(part, list) else part for part in parts)


def reveals(output: dict, secrets: Iterable[str]) -> bool:
    """Whether the output's text holds one of ``secrets`` (solution lines)."""
    text = output_text(output)
    return any(secret in text for secret in secrets)


def graft_outputs(student: dict, master: dict, secrets: list[str], where: str) -> list[str]:
    """Give the released ``student`` notebook's code cells the master's outputs, by the rule of
    the module docstring (in place); return one line per output dropped because it revealed a
    solution.

    Raises ValueError naming the cell when a given master cell with outputs has no cell of the
    same source in the student notebook, in order (the release changed given code).
    """
    given, position, dropped = given_cells(master), 0, []
    for number, cell in enumerate(student["cells"], 1):
        if cell["cell_type"] != "code":
            continue
        cell["outputs"], cell["execution_count"] = [], None
        key = _source_key(cell)
        match = next((i for i in range(position, len(given))
                      if _source_key(given[i]) == key), None)
        if match is None:
            continue
        for skipped in given[position:match]:
            if skipped.get("outputs"):
                raise ValueError(f"{where}: the given cell {cell_source(skipped)[:60]!r} of the "
                                 "master has outputs but no twin in the student release, in "
                                 "order; the book would lose them")
        source = given[match]
        position = match + 1
        cell["execution_count"] = source.get("execution_count")
        for output in source.get("outputs", []):
            if reveals(output, secrets):
                dropped.append(f"{where}, cell {number}: an output holds a solution line")
            else:
                cell["outputs"].append(copy.deepcopy(output))
    if any(cell.get("outputs") for cell in given[position:]):
        raise ValueError(f"{where}: given cells with outputs after cell {position} have no twin "
                         "in the student release")
    return dropped


def student_notebook(master: Path, released: Path | None) -> tuple[dict, list[str]]:
    """The student edition of one notebook and the outputs it left out (see ``graft_outputs``).

    ``released`` is the release's ``student/NN_name/NN_name.ipynb`` (None for a notebook
    without exercises, which is the master less its instructor blocks)."""
    master_data = json.loads(master.read_text(encoding="utf-8"))
    if released is None:
        with tempfile.TemporaryDirectory(prefix="book-") as tmp:
            copied = Path(tmp) / master.name
            shutil.copy2(master, copied)
            speak_to_students(copied)
            return offline_notebook(json.loads(copied.read_text(encoding="utf-8"))), []
    if not released.is_file():
        raise FileNotFoundError(f"{released} is missing: release {master.name} first "
                                "(make release), or build without --release")
    student = json.loads(released.read_text(encoding="utf-8"))
    dropped = graft_outputs(student, master_data, solution_texts(master), master.name)
    return offline_notebook(student), dropped


def write_source(edition: str, source: Path, notebooks: list[Path],
                 release_dir: Path | None) -> list[str]:
    """Fill ``source`` with the book's config and ``edition``'s notebook copies; return the
    outputs the student edition left out."""
    for name in CONFIG_FILES:
        shutil.copy2(BOOK_DIR / name, source / name)
    config = yaml.safe_load((BOOK_DIR / "_config.yml").read_text(encoding="utf-8"))
    config["title"] = f"{config['title']} ({edition} edition)"
    config.setdefault("parse", {}).setdefault("myst_substitutions", {})["edition"] = edition
    atomic_write_text(source / "_config.yml", yaml.safe_dump(config, sort_keys=False))
    dropped: list[str] = []
    for notebook in notebooks:
        if edition == "instructor":
            data = instructor_notebook(notebook)
        else:
            released = (release_dir / notebook.stem / notebook.name
                        if is_master_notebook(notebook) else None)
            data, left_out = student_notebook(notebook, released)
            dropped += left_out
        atomic_write_json(source / notebook.name, data)
    return dropped


def run_jupyter_book(source: Path, work: Path, edition: str) -> Path:
    """``jupyter-book build`` of ``source`` (warnings are errors); return its html folder."""
    command = [sys.executable, "-c", "from jupyter_book.cli.main import main; main()", "build",
               str(source), "--path-output", str(work), "-W", "--keep-going", "-q"]
    result = subprocess.run(command, capture_output=True, text=True, cwd=source)
    if result.returncode != 0:
        raise RuntimeError(f"jupyter-book build of the {edition} edition failed:\n"
                           f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
    return work / "_build" / "html"


def build_edition(edition: str, out: Path, release_dir: Path | None = None) -> Path:
    """Build one edition into ``out/<edition>/`` (replaced whole, only once the build
    succeeded); return that folder.

    ``release_dir`` is a release's ``student/`` folder; the student edition needs it.
    """
    if edition not in EDITIONS:
        raise ValueError(f"edition must be one of {EDITIONS}, got {edition!r}")
    if edition == "student" and release_dir is None:
        raise ValueError("the student edition is built from a release: pass release_dir")
    notebooks = course_notebooks()
    check_toc(notebooks)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".book-{edition}-", dir=out) as tmp:
        source = Path(tmp) / "source"
        source.mkdir()
        for line in write_source(edition, source, notebooks, release_dir):
            print(f"{edition} edition: left out: {line}", file=sys.stderr)
        html = run_jupyter_book(source, Path(tmp) / "work", edition)
        # after the build: jupyter-book would add every .js under the source's _static to
        # every page's <head>, MathJax's lazily loaded parts included
        copy_mathjax(html / "_static")
        target = out / edition
        if target.exists():
            os.replace(target, Path(tmp) / "previous")  # removed with the temporary folder
        os.replace(html, target)
    return target


def release_students(out: Path) -> Path:
    """Release every master into ``out`` (one otter process); return ``out/student``."""
    release_all([p for p in course_notebooks() if is_master_notebook(p)], out)
    return out / "student"


def build_book(out: Path = DEFAULT_OUT, editions: Iterable[str] = EDITIONS,
               release_dir: Path | None = None) -> dict[str, Path]:
    """Build ``editions`` into ``out``; return ``{edition: folder}``.

    Without ``release_dir`` the masters are released afresh into a temporary folder (while
    the instructor edition builds), never into ``dist/``.
    """
    editions, out = list(editions), Path(out).resolve()
    with tempfile.TemporaryDirectory(prefix="book-release-") as tmp, \
            ThreadPoolExecutor(max_workers=2) as pool:
        jobs = {}
        if "instructor" in editions:
            jobs["instructor"] = pool.submit(build_edition, "instructor", out)
        if "student" in editions:
            released = release_dir or release_students(Path(tmp))
            jobs["student"] = pool.submit(build_edition, "student", out, released)
        return {edition: jobs[edition].result() for edition in editions}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_utils.instructor.book",
                                     description="Build the course book (make book).")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help="folder for <edition>/ (default: book/_build)")
    parser.add_argument("--editions", nargs="+", choices=EDITIONS, default=list(EDITIONS))
    parser.add_argument("--release", type=Path, default=None,
                        help="a release's student/ folder (default: release afresh into a "
                             "temporary folder)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        built = build_book(args.out, args.editions, args.release)
    except (FileNotFoundError, ValueError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for edition, folder in built.items():
        print(f"{edition} edition: {folder}/index.html")
    print(f"built in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
