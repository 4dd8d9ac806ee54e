"""Run every course notebook with papermill into ``runs/<name>/`` and summarise the checks.

    python -m course_utils.instructor.run_notebooks            # all notebooks -> runs/latest/
    python -m course_utils.instructor.run_notebooks --params grading.yaml -p epochs 2 --name graded
    python -m course_utils.instructor.run_notebooks --notebooks 03 --no-html  # a subset (prefix)
    python -m course_utils.instructor.run_notebooks --list-parameters [--markdown]
    python -m course_utils.instructor.run_notebooks --cell-timeout 0 -p preset report  # no limit

What a run folder ``runs/<name>/`` holds:

    <notebook>.ipynb                 executed copy (the sources in notebooks/ are never touched)
    <notebook>.html                  the same, exported for readers without Jupyter
    results/<notebook>.checks.json   the "Checks against the report" rows the notebook saved
    results/<notebook>.meta.json     {"device": ...} for notebooks that record one
    results/<notebook>.run.json      status, seconds, failing cell, parameters (from the runner)
    figures/                         figures the notebooks saved during this run
    mathjax/                         MathJax for the HTML pages (formulas render offline)
    checkpoints/                     only with --keep-checkpoints (a graded run keeps none)
    summary.md, summary.csv          one table over the whole collection

The executed copies and HTML pages read anywhere: markdown images of local files are embedded
as cell attachments, and the HTML loads MathJax from the run folder, not a CDN. A cell that
runs longer than ``--cell-timeout`` seconds is stopped and reported as "timed out".

Notebooks hand their rows over as data (``course_utils.checks.save_checks`` writes JSON when
``$COURSE_RUN_DIR`` is set); the runner never scrapes printed text. Exit status: 0 when every
notebook ran, 1 when one failed (the others still run), 2 for bad arguments (nothing runs).
"""

from __future__ import annotations

import argparse
import ast
import base64
import contextlib
import difflib
import fnmatch
import io
import json
import logging
import os
import re
import shutil
import sys
import time
import tokenize
import urllib.parse
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import nbformat
import pandas as pd
import yaml

from course_utils.atomic import atomic_write_json, atomic_write_text
from course_utils.checks import BY_CONSTRUCTION, match_label
from course_utils.paths import (
    FIGURES_ENV,
    KEEP_CHECKPOINTS_ENV,
    NOTEBOOKS_DIR,
    PROJECT_ROOT,
    RUN_DIR_ENV,
    RUNS_DIR,
    display_path,
)

KERNEL_NAME = "python3"
DEFAULT_RUN_NAME = "latest"
# papermill tags: the cell it inserts with the overrides, and the markdown cells it adds on error.
INJECTED_TAG = "injected-parameters"
ERROR_CELL_TAG = "papermill-error-cell-tag"
NO_DEVICE = "-"
CHECK_COLUMNS = ["quantity", "source", "report", "computed", "match", "why not"]
#: Seconds one cell may run: far above any cell of the default run (notebook 03's training cell,
#: the slowest, took 1-4 minutes on a shared 2-core CPU), low enough that a hung cell does not
#: stall grading.
DEFAULT_CELL_TIMEOUT = 900


class RunnerError(ValueError):
    """Bad input to the runner (parameters, notebook selection, run name); nothing has run."""


@dataclass(frozen=True)
class NotebookParameter:
    """One assignment in a notebook's cell tagged ``parameters``.

    type: the annotation if any, else the type of the literal default ("expression" when the
    default is not a literal); default: the source text; help: the line's trailing comment.
    """

    name: str
    type: str
    default: str
    help: str = ""


@dataclass
class NotebookResult:
    """What running one notebook produced.

    status: "ok" or "failed"; cell: index of the failing cell in the *source* notebook (None
    when nothing failed or no cell is to blame); execution_count: its ``In [n]`` in the executed
    copy; checks: the rows from ``results/<notebook>.checks.json`` (dicts as saved).
    """

    notebook: str
    status: str
    seconds: float
    device: str = NO_DEVICE
    cell: int | None = None
    execution_count: int | None = None
    error: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)
    checks: list[dict[str, Any]] = field(default_factory=list)
    note: str = ""

    @property
    def failure(self) -> str:
        """One line naming the cell and the error, "" when the notebook ran."""
        if self.status == "ok":
            return ""
        if self.cell is None:
            return self.error
        count = "" if self.execution_count is None else f" (In [{self.execution_count}])"
        return f"cell {self.cell}{count}: {self.error}"


# ---- parameters from the command line and YAML ----------------------------------------------

def parse_value(text: str) -> Any:
    """Convert a ``-p NAME VALUE`` string the way papermill's own ``-p`` does.

    "True"/"False"/"None" become bool/None, then int, then float; anything else stays a string.
    """
    if text in ("True", "False"):
        return text == "True"
    if text == "None":
        return None
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return text


def read_params_file(path: str | os.PathLike) -> dict[str, Any]:
    """Read a YAML mapping ``name: value`` of parameters for all notebooks."""
    path = Path(path)
    if not path.is_file():
        raise RunnerError(f"parameters file {display_path(path)!r} not found "
                          "(pass --params with a YAML file of `name: value` lines)")
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise RunnerError(f"could not parse {display_path(path)!r} as YAML: {exc}") from exc
    if loaded is None:  # an empty file: no overrides
        return {}
    if not isinstance(loaded, dict):
        raise RunnerError(f"{display_path(path)!r} must be a YAML mapping of `name: value` "
                          f"lines (e.g. `epochs: 2`), got a {type(loaded).__name__}")
    for name, value in loaded.items():
        _check_name(name, f"in {display_path(path)!r}")
        if not _is_plain(value):
            raise RunnerError(f"parameter {name!r} in {display_path(path)!r}: YAML read "
                              f"{value!r} as a {type(value).__name__}; quote it to pass text")
    return loaded


def collect_params(params_file: str | os.PathLike | None,
                   pairs: Sequence[Sequence[str]] = ()) -> dict[str, Any]:
    """Merge the YAML file and ``-p NAME VALUE`` pairs; like papermill, later sources win."""
    params = read_params_file(params_file) if params_file else {}
    for name, text in pairs:
        _check_name(name, "given with -p")
        params[name] = parse_value(text)
    return params


def _is_plain(value: Any) -> bool:
    """Values papermill can write into a notebook and the run can save as JSON."""
    if isinstance(value, list):
        return all(_is_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_plain(v) for k, v in value.items())
    return value is None or isinstance(value, str | int | float | bool)


def _check_name(name: Any, where: str) -> None:
    if not isinstance(name, str) or not name.isidentifier():
        raise RunnerError(f"parameter name {name!r} {where} is not a Python variable name")


# ---- notebooks and the parameters they declare ----------------------------------------------

def find_notebooks(folder: Path, patterns: Sequence[str] = ()) -> list[Path]:
    """The notebooks of ``folder`` in name order, optionally only those matching ``patterns``.

    A pattern is a prefix ("03"), a name or path ("notebooks/03_training.ipynb") or a glob
    ("0[1-3]_*").
    """
    if not folder.is_dir():
        raise RunnerError(f"notebook folder {display_path(folder)!r} does not exist")
    notebooks = sorted(folder.glob("*.ipynb"))
    if not patterns:
        return notebooks
    for pattern in patterns:
        if not any(_matches(nb, pattern) for nb in notebooks):
            names = ", ".join(nb.stem for nb in notebooks) or "none"
            raise RunnerError(f"--notebooks {pattern!r} matches no notebook in "
                              f"{display_path(folder)}/ (there are: {names})")
    return [nb for nb in notebooks if any(_matches(nb, p) for p in patterns)]


def _matches(notebook: Path, pattern: str) -> bool:
    pattern = os.path.basename(pattern)  # "notebooks/03_training.ipynb", as tab completion gives
    return notebook.name.startswith(pattern) or fnmatch.fnmatch(notebook.name, pattern) \
        or fnmatch.fnmatch(notebook.stem, pattern)


def read_notebook(path: Path) -> nbformat.NotebookNode:
    """Load a notebook, with an error naming the file if it is not valid JSON/nbformat."""
    try:
        return nbformat.read(path, as_version=4)
    except Exception as exc:  # nbformat raises several unrelated types for a broken file
        raise RunnerError(f"could not read notebook {display_path(path)!r}: {exc} "
                          "(open and re-save it in Jupyter)") from exc


def parameters_cell(nb: nbformat.NotebookNode) -> nbformat.NotebookNode | None:
    """The first code cell tagged ``parameters`` (the one papermill uses), or None."""
    for cell in nb.cells:
        if cell.cell_type == "code" and "parameters" in cell.get("metadata", {}).get("tags", []):
            return cell
    return None


def read_parameters(notebook: Path) -> list[NotebookParameter]:
    """The parameters ``notebook`` declares in its cell tagged ``parameters``, in order."""
    cell = parameters_cell(read_notebook(notebook))
    return [] if cell is None else parse_parameters(cell.source, notebook.name)


def parse_parameters(source: str, where: str = "notebook") -> list[NotebookParameter]:
    """Every top-level ``name = value`` (or ``name: type = value``) in a parameters cell.

    Uses ``ast`` rather than papermill.inspect_notebook: papermill skips any line holding two
    "=" signs, so ``preset = None  # None = quick`` would vanish and be rejected as unknown.
    """
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise RunnerError(f"{where}: the cell tagged 'parameters' is not plain Python "
                          f"(line {exc.lineno}: {exc.msg}); keep it to `name = value` lines"
                          ) from exc
    comments = _line_comments(source)
    found = []
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 \
                and isinstance(node.targets[0], ast.Name):
            name, annotation = node.targets[0].id, None
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) \
                and node.value is not None:
            name, annotation = node.target.id, ast.get_source_segment(source, node.annotation)
        else:
            continue  # imports, tuple unpacking...: not something papermill can override
        default = ast.get_source_segment(source, node.value) or ""
        help_text = comments.get(node.end_lineno, comments.get(node.lineno, ""))
        found.append(NotebookParameter(name, annotation or _literal_type(node.value),
                                       default, help_text))
    return found


def _line_comments(source: str) -> dict[int, str]:
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    return {tok.start[0]: tok.string.lstrip("#").strip()
            for tok in tokens if tok.type == tokenize.COMMENT}


def _literal_type(node: ast.expr) -> str:
    try:
        value = ast.literal_eval(node)
    except ValueError:
        return "expression"
    return "None" if value is None else type(value).__name__


def declared_parameters(notebooks: Sequence[Path]) -> dict[str, list[NotebookParameter]]:
    """Notebook file name -> the parameters it declares."""
    return {nb.name: read_parameters(nb) for nb in notebooks}


def check_known(params: dict[str, Any], declared: dict[str, list[NotebookParameter]]) -> None:
    """Raise if a parameter is declared by no notebook: a typo must not grade with defaults."""
    known = sorted({p.name for plist in declared.values() for p in plist})
    unknown = [name for name in params if name not in known]
    if not unknown:
        return
    lines = []
    for name in unknown:
        close = difflib.get_close_matches(name, known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        lines.append(f"unknown parameter {name!r}: no notebook declares it{hint}")
    lines.append(f"known parameters: {', '.join(known) or 'none'}; see "
                 "`python -m course_utils.instructor.run_notebooks --list-parameters`")
    raise RunnerError("\n".join(lines))


def params_for(params: dict[str, Any], declared: Sequence[NotebookParameter]) -> dict[str, Any]:
    """The subset of ``params`` that one notebook declares (papermill would warn on the rest)."""
    names = {p.name for p in declared}
    return {name: value for name, value in params.items() if name in names}


# ---- --list-parameters ------------------------------------------------------------------------

def format_parameters(declared: dict[str, list[NotebookParameter]]) -> str:
    """Plain-text listing: each notebook, then ``name: type = default  # help`` lines."""
    lines = []
    for notebook, plist in declared.items():
        lines.append(notebook)
        if not plist:
            lines.append("  (no cell tagged 'parameters')")
        for p in plist:
            comment = f"  # {p.help}" if p.help else ""
            lines.append(f"  {p.name}: {p.type} = {p.default}{comment}")
    return "\n".join(lines) + "\n"


def format_parameters_markdown(declared: dict[str, list[NotebookParameter]]) -> str:
    """The README's parameter table (the block between the ``parameters:start/end`` markers)."""
    rows = []
    for notebook, plist in declared.items():
        stem = Path(notebook).stem
        if not plist:
            rows.append([stem, "(none)", "", "", ""])
        for p in plist:
            rows.append([stem, f"`{p.name}`", p.type, f"`{p.default}`", p.help])
    return markdown_table(["notebook", "parameter", "type", "default", "meaning"], rows)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub markdown table; "|" and newlines inside cells are escaped."""
    def cell(value: Any) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


# ---- running ------------------------------------------------------------------------------------

@contextlib.contextmanager
def kernel_environment(run_folder: Path, keep_checkpoints: bool = False) -> Iterator[None]:
    """Environment the kernels inherit during a run; restored afterwards.

    COURSE_RUN_DIR / COURSE_FIGURES_DIR send results and figures into the run folder;
    COURSE_KEEP_CHECKPOINTS=1 only with ``keep_checkpoints`` (else removed, so a value from the
    shell cannot keep 440 MB per run). The kernelspec starts "python" through PATH, so put this
    interpreter's folder first: a direct ``.venv/bin/python -m ...`` call must not start a
    system Python without the packages.
    """
    updates = {
        RUN_DIR_ENV: str(run_folder.resolve()),
        FIGURES_ENV: str((run_folder / "figures").resolve()),
        KEEP_CHECKPOINTS_ENV: "1" if keep_checkpoints else None,
        "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""),
        "PYTHONHASHSEED": os.environ.get("PYTHONHASHSEED", "0"),  # as `make` sets it
    }
    saved = {name: os.environ.get(name) for name in updates}
    _set_environment(updates)
    try:
        yield
    finally:
        _set_environment(saved)


def _set_environment(values: dict[str, str | None]) -> None:
    """Set each variable; None removes it."""
    for name, value in values.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def execute(source: Path, output: Path, params: dict[str, Any],
            cell_timeout: int | None = None) -> Exception | None:
    """Execute ``source`` into ``output`` with papermill; return the error, None if it ran.

    The kernel's working directory is the notebook's folder, as in Jupyter. A cell running
    longer than ``cell_timeout`` seconds (None: no limit) is interrupted and fails the notebook.
    """
    import papermill  # imported here: --list-parameters and bad input stay fast

    try:
        with quiet_papermill():
            papermill.execute_notebook(
                str(source), str(output), parameters=params, kernel_name=KERNEL_NAME,
                cwd=str(source.parent), progress_bar=False, log_output=False,
                execution_timeout=cell_timeout,
                # the kernel's own log (transport warnings, shutdown notes) is not the
                # notebook's output; cell errors still arrive through papermill
                extra_arguments=["--IPKernelApp.log_level=CRITICAL"])
    except Exception as exc:  # any failure is recorded in the summary; the next notebook runs
        return exc
    return None


@contextlib.contextmanager
def quiet_papermill() -> Iterator[None]:
    """Hide papermill's warnings while it runs a notebook.

    papermill re-parses the parameters cell with a regex that drops any line holding two "="
    and then warns "Passed unknown parameter" for names the notebook does declare; the runner
    has already checked every name (``check_known``). Real failures still raise.
    """
    logger = logging.getLogger("papermill")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def failing_cell(error: Exception, executed: Path) -> tuple[int | None, int | None]:
    """(source cell index, execution count) of the cell to blame, or (None, None).

    A cell that raised is named by papermill. When the kernel died or timed out there is no
    such cell: blame the last cell that started. papermill's index counts its injected cell,
    which the source notebook does not have, so subtract it when it came before.
    """
    index = getattr(error, "cell_index", None)
    try:
        cells = [c for c in nbformat.read(executed, as_version=4).cells
                 if ERROR_CELL_TAG not in c.get("metadata", {}).get("tags", [])]
    except Exception:  # no readable copy (papermill failed before writing it)
        return index, getattr(error, "exec_count", None)
    if index is None:
        started = [i for i, c in enumerate(cells)
                   if c.get("metadata", {}).get("papermill", {}).get("start_time")]
        if not started:
            return None, None
        index = started[-1]
    injected = sum(INJECTED_TAG in c.get("metadata", {}).get("tags", []) for c in cells[:index])
    return index - injected, cells[index].get("execution_count")


def error_text(error: Exception, cell_timeout: int | None = None) -> str:
    """``Type: message`` on one line (papermill errors carry the kernel's ename/evalue).

    A cell stopped by the time limit reads "timed out after N s".
    """
    from nbclient.exceptions import CellTimeoutError

    if isinstance(error, CellTimeoutError):
        return f"timed out after {cell_timeout} s" if cell_timeout else "timed out"
    name = getattr(error, "ename", None) or type(error).__name__
    message = getattr(error, "evalue", None)
    if message is None:
        message = str(error)
    line = f"{name}: {message}".strip().replace("\n", " ")
    return line if len(line) <= 300 else line[:297] + "..."


def export_html(executed: Path, html: Path) -> None:
    """Write the executed notebook as a standalone HTML page (atomically).

    MathJax comes from the run folder's ``mathjax/`` (``copy_mathjax``), by a relative URL, so
    formulas render offline and after the folder moves. require.js (for widget and JavaScript
    outputs, which the course notebooks do not have) is left out rather than fetched from a CDN.
    """
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(mathjax_url=MATHJAX_URL, require_js_url="data:text/javascript,")
    body, _ = exporter.from_filename(str(executed))
    atomic_write_text(html, body)


# ---- a run folder that reads anywhere: MathJax and images inside it -----------------------------

MATHJAX_DIR = "mathjax"
#: HTML-CSS output with the STIX-Web fonts: the combination jupyter-server-mathjax ships.
MATHJAX_URL = f"{MATHJAX_DIR}/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full,Safe,course"
#: The files of jupyter-server-mathjax's MathJax 2.7 that this configuration loads, or may load
#: on demand (TeX extensions, menus): about 3 MB, out of 12 MB (no SVG output, accessibility
#: explorer or translations).
MATHJAX_FILES = (
    "MathJax.js", "LICENSE", "config/TeX-AMS-MML_HTMLorMML-full.js", "config/Safe.js",
    "extensions/*.js", "extensions/TeX/**/*", "extensions/HTML-CSS/*", "jax/input/TeX/*",
    "jax/element/**/*", "jax/output/HTML-CSS/**/*", "fonts/HTML-CSS/STIX-Web/woff/**/*",
    "localization/en/*",
)
#: config/course.js: only the STIX-Web web fonts are shipped; never look for TeX fonts.
MATHJAX_CONFIG = """MathJax.Hub.Config({
  "HTML-CSS": {availableFonts: [], preferredFont: null, webFont: "STIX-Web", imageFont: null}
});
MathJax.Ajax.loadComplete("[MathJax]/config/course.js");
"""


def copy_mathjax(run_folder: Path) -> Path:
    """Copy the MathJax files the HTML pages load into ``run_folder/mathjax/``; return it."""
    import jupyter_server_mathjax

    static = Path(jupyter_server_mathjax.__file__).parent / "static"
    target = run_folder / MATHJAX_DIR
    for pattern in MATHJAX_FILES:
        for path in static.glob(pattern):
            if path.is_file():
                destination = target / path.relative_to(static)
                destination.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, destination)
    atomic_write_text(target / "config" / "course.js", MATHJAX_CONFIG)
    return target


#: ``![alt](src "title")`` in markdown; src without spaces (as Jupyter writes it).
MARKDOWN_IMAGE = re.compile(r'!\[(?P<alt>[^\]]*)\]\((?P<src>[^)\s]+)(?P<title>\s+"[^"]*")?\)')
IMAGE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
               ".gif": "image/gif"}


def local_image(src: str, source_dir: Path, run_figures: Path) -> Path | None:
    """The file a relative markdown image link points to, or None (a URL, absolute, missing).

    Resolved from the source notebook's folder; a file under the project's ``figures/`` is
    taken from the run's own ``figures/`` when the run wrote it (the figure of this run).
    """
    src = urllib.parse.unquote(src)
    if urllib.parse.urlparse(src).scheme or os.path.isabs(src) \
            or Path(src).suffix.lower() not in IMAGE_TYPES:
        return None
    path = (source_dir / src).resolve()
    candidates = []
    for figures in {PROJECT_ROOT / "figures", source_dir.resolve().parent / "figures"}:
        if path.is_relative_to(figures):
            candidates.append(run_figures / path.relative_to(figures))
    candidates.append(path)
    return next((c for c in candidates if c.is_file()), None)


def embed_images(executed: Path, source_dir: Path, run_figures: Path) -> int:
    """Embed markdown images of local files as cell attachments in ``executed``; return how many.

    ``![alt](../figures/x.png)`` becomes ``![alt](attachment:x.png)`` with the PNG in the cell's
    ``attachments``, so the .ipynb and its HTML show it wherever the run folder is moved.
    """
    nb = nbformat.read(executed, as_version=4)
    count = sum(_embed_cell_images(cell, source_dir, run_figures)
                for cell in nb.cells if cell.cell_type == "markdown")
    if count:
        atomic_write_text(executed, nbformat.writes(nb))
    return count


def _embed_cell_images(cell: nbformat.NotebookNode, source_dir: Path, run_figures: Path) -> int:
    """Rewrite one markdown cell's local image links to attachments; return how many."""
    attachments = dict(cell.get("attachments", {}))
    count = 0

    def attach(match: re.Match) -> str:
        nonlocal count
        path = local_image(match["src"], source_dir, run_figures)
        if path is None:
            return match[0]
        mime = IMAGE_TYPES[path.suffix.lower()]
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        name = path.name
        if attachments.get(name, {}).get(mime, data) != data:  # another file, same name
            name = f"{len(attachments)}_{name}"
        attachments[name] = {mime: data}
        count += 1
        return f"![{match['alt']}](attachment:{name}{match['title'] or ''})"

    cell.source = MARKDOWN_IMAGE.sub(attach, cell.source)
    if count:
        cell["attachments"] = attachments
    return count


def read_results(results: Path, stem: str) -> tuple[list[dict[str, Any]], str]:
    """The check rows and device a notebook saved ("-" when it recorded no device)."""
    checks = read_json(results / f"{stem}.checks.json").get("checks", [])
    meta = read_json(results / f"{stem}.meta.json")
    return checks, str(meta.get("device", NO_DEVICE))


def read_json(path: Path) -> dict[str, Any]:
    """A results file as a dict ({} when absent); a broken one is an error naming it."""
    if not path.is_file():
        return {}
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{display_path(path)} is not valid JSON ({exc}); write it with "
                         "course_utils.checks.save_checks / save_run_meta") from exc
    if not isinstance(loaded, dict):
        raise ValueError(f"{display_path(path)} should hold a JSON object")
    return loaded


def remove_stale(run_folder: Path, stem: str) -> None:
    """Delete a previous run's files for this notebook, so none can pass for this run's."""
    stale = [run_folder / f"{stem}.ipynb", run_folder / f"{stem}.html",
             run_folder / "checkpoints" / f"{stem}.pt"]  # 440 MB for 03, even without the flag
    stale += (run_folder / "results").glob(f"{stem}.*.json")  # checks, meta, run and the like
    for path in stale:
        path.unlink(missing_ok=True)


def run_notebook(source: Path, run_folder: Path, params: dict[str, Any], html: bool = True,
                 cell_timeout: int | None = DEFAULT_CELL_TIMEOUT) -> NotebookResult:
    """Execute one notebook into ``run_folder`` and collect what it produced.

    cell_timeout: seconds one cell may run (None: no limit).
    """
    stem = source.stem
    executed = run_folder / source.name
    remove_stale(run_folder, stem)
    start = time.perf_counter()
    error = execute(source, executed, params, cell_timeout)
    seconds = time.perf_counter() - start
    result = NotebookResult(stem, "ok" if error is None else "failed", seconds, parameters=params)
    if error is not None:
        result.cell, result.execution_count = failing_cell(error, executed)
        result.error = error_text(error, cell_timeout)
    if executed.is_file():  # a failed notebook's copy and page show where it stopped
        try:
            embed_images(executed, source.parent, run_folder / "figures")
            if html:
                export_html(executed, run_folder / f"{stem}.html")
        except Exception as exc:  # recorded, and the run goes on
            result.status = "failed"
            result.error = result.error or f"images/HTML export failed: {error_text(exc)}"
    try:
        result.checks, result.device = read_results(run_folder / "results", stem)
    except ValueError as exc:  # a broken results file fails this notebook, not the run
        result.status, result.error = "failed", result.error or str(exc)
    if result.status == "ok" and not result.checks:
        result.note = f'no checks saved (does it call show_checks("{stem}", rows)?)'
    atomic_write_json(run_folder / "results" / f"{stem}.run.json", asdict(result))
    return result


def check_destination(notebooks: Sequence[Path], run_folder: Path) -> None:
    """Refuse a run folder where an executed copy would overwrite its source."""
    for nb in notebooks:
        if (run_folder / nb.name).resolve() == nb.resolve():
            raise RunnerError(f"run folder {display_path(run_folder)!r} is the notebooks' own "
                              "folder: executed copies would overwrite the sources; pick "
                              "another --name or --runs-dir")


def run_all(notebooks: Sequence[Path], run_folder: Path, params: dict[str, Any],
            declared: dict[str, list[NotebookParameter]], html: bool = True, *,
            cell_timeout: int | None = DEFAULT_CELL_TIMEOUT,
            keep_checkpoints: bool = False) -> list[NotebookResult]:
    """Run each notebook in order; a failure (or a cell over ``cell_timeout`` s) does not stop
    the others.

    Prints one line per notebook and rewrites summary.md/csv after each one.
    """
    check_destination(notebooks, run_folder)
    run_folder.mkdir(parents=True, exist_ok=True)
    if html:
        copy_mathjax(run_folder)  # once per run; every page loads it by a relative URL
    width = max(len(nb.stem) for nb in notebooks)
    results = []
    with kernel_environment(run_folder, keep_checkpoints):
        for nb in notebooks:
            result = run_notebook(nb, run_folder, params_for(params, declared[nb.name]), html,
                                  cell_timeout)
            status = "ok" if result.status == "ok" else f"FAILED: {result.failure}"
            print(f"{result.notebook:<{width}}  {result.seconds:7.1f} s  {status}", flush=True)
            results.append(result)
            # after every notebook, so an interrupted run still leaves a true summary
            write_summary(results, run_folder, params)
    return results


# ---- summary ----------------------------------------------------------------------------------

def summary_frame(results: Sequence[NotebookResult]) -> pd.DataFrame:
    """One row per check of every notebook, with its notebook's status, time and device.

    A notebook without checks (failed early, or saved none) still gets one row.
    """
    rows = []
    for r in results:
        base = {"notebook": r.notebook, "status": r.status, "seconds": round(r.seconds, 1),
                "device": r.device, "failed cell": "" if r.cell is None else r.cell,
                "error": r.error or r.note}
        blank = dict.fromkeys(CHECK_COLUMNS, "")
        for check in r.checks or [None]:
            row = dict(base, **blank)
            if check is not None:
                row.update(quantity=check["quantity"], source=check["source"],
                           report=check["report"], computed=check["computed"],
                           match=match_label(check))
                row["why not"] = check.get("why", "")
            rows.append(row)
    columns = ["notebook", "status", "seconds", "device", "failed cell", "error", *CHECK_COLUMNS]
    return pd.DataFrame(rows, columns=columns)


def summary_markdown(results: Sequence[NotebookResult], run_name: str,
                     params: dict[str, Any]) -> str:
    """summary.md: parameters, counts, a table of notebooks, then every check row."""
    checks = [(r.notebook, c) for r in results for c in r.checks]
    failed = [r for r in results if r.status != "ok"]
    differ = [c for _, c in checks if not c["match"]]
    built = [c for _, c in checks if match_label(c) == BY_CONSTRUCTION]
    unexplained = [c for c in differ if c.get("why") == "unexplained difference"]
    given = ", ".join(f"`{k}={v!r}`" for k, v in params.items()) or "none (notebook defaults)"
    lines = [
        f"# Run `{run_name}`", "",
        f"Parameters: {given}", "",
        f"{len(results)} notebooks: {len(results) - len(failed)} ok, {len(failed)} failed. "
        f"{len(checks)} checks: {len(checks) - len(differ) - len(built)} match, "
        f"{len(built)} by construction, {len(differ)} differ "
        f"({len(unexplained)} unexplained).", "",
        "## Notebooks", "",
        markdown_table(["notebook", "status", "seconds", "device", "parameters", "failure"],
                       [[r.notebook, r.status, f"{r.seconds:.1f}", r.device,
                         ", ".join(f"{k}={v!r}" for k, v in r.parameters.items()),
                         r.failure or r.note] for r in results]),
        "## Checks against the report", "",
        markdown_table(["notebook", *CHECK_COLUMNS],
                       [[nb, c["quantity"], c["source"], c["report"], c["computed"],
                         match_label(c), c.get("why", "")] for nb, c in checks]),
    ]
    return "\n".join(lines)


def write_summary(results: Sequence[NotebookResult], run_folder: Path,
                  params: dict[str, Any]) -> None:
    """Write summary.md and summary.csv into the run folder (atomically)."""
    atomic_write_text(run_folder / "summary.csv", summary_frame(results).to_csv(index=False))
    atomic_write_text(run_folder / "summary.md",
                      summary_markdown(results, run_folder.name, params))


# ---- command line -----------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    """The command-line options (see the module docstring)."""
    parser = argparse.ArgumentParser(
        prog="python -m course_utils.instructor.run_notebooks",
        description="Execute the course notebooks with papermill into runs/<name>/.")
    parser.add_argument("--params", metavar="FILE.yaml",
                        help="YAML mapping `name: value` of parameters for all notebooks")
    parser.add_argument("-p", "--param", nargs=2, action="append", default=[],
                        metavar=("NAME", "VALUE"),
                        help="one parameter (repeatable; True/False/None, ints and floats are "
                             "converted as by papermill -p); overrides --params. Relative "
                             "paths are relative to notebooks/, where the kernels run")
    parser.add_argument("--name", default=DEFAULT_RUN_NAME,
                        help="run folder name under runs/ (default: %(default)s)")
    parser.add_argument("--notebooks", nargs="+", default=[], metavar="PATTERN",
                        help="only these notebooks: prefix (03), name or glob")
    parser.add_argument("--no-html", action="store_true", help="skip the HTML export")
    parser.add_argument("--cell-timeout", type=cell_timeout_arg, default=DEFAULT_CELL_TIMEOUT,
                        metavar="SECONDS",
                        help="stop a cell that runs longer than this and report the notebook "
                             "as 'timed out' (the others still run); 0 or none: no limit, e.g. "
                             "for -p preset report on a CPU (default: %(default)s)")
    parser.add_argument("--keep-checkpoints", action="store_true",
                        help="keep training checkpoints in runs/<name>/checkpoints/ (about "
                             "440 MB for notebook 03); by default a graded run writes none")
    parser.add_argument("--list-parameters", action="store_true",
                        help="print every notebook's parameters with defaults and types")
    parser.add_argument("--markdown", action="store_true",
                        help="with --list-parameters: the README's markdown table")
    parser.add_argument("--notebooks-dir", type=Path, default=NOTEBOOKS_DIR,
                        help="folder of the notebooks (default: notebooks/)")
    parser.add_argument("--runs-dir", type=Path, default=RUNS_DIR,
                        help="folder of the run folders (default: runs/)")
    return parser


def cell_timeout_arg(text: str) -> int | None:
    """``--cell-timeout`` value: whole seconds; 0 or "none" for no limit (None)."""
    if text.strip().lower() in ("0", "none"):
        return None
    try:
        seconds = int(text)
    except ValueError:
        seconds = 0
    if seconds < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds (a whole number "
                                         ">= 1, or 0 / none for no limit)")
    return seconds


def check_run_name(name: str) -> str:
    """A run name is one plain folder name under runs/."""
    if not name or name in (".", "..") or "/" in name or "\\" in name:
        raise RunnerError(f"--name {name!r} must be a plain folder name like 'graded-2024'")
    return name


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns 0 (all ran), 1 (a notebook failed) or 2 (bad input)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.markdown and not args.list_parameters:
        parser.error("--markdown only goes with --list-parameters")  # never start a full run
    try:
        everything = declared_parameters(find_notebooks(args.notebooks_dir))
        notebooks = find_notebooks(args.notebooks_dir, args.notebooks)
        declared = {nb.name: everything[nb.name] for nb in notebooks}
        if args.list_parameters:
            listing = format_parameters_markdown if args.markdown else format_parameters
            print(listing(declared), end="")
            return 0
        if not notebooks:
            raise RunnerError(f"no notebooks in {display_path(args.notebooks_dir)}/")
        params = collect_params(args.params, args.param)
        # checked against every notebook, not just the selected ones: a grading file written for
        # the whole course stays valid for a subset run, while a typo is still caught
        check_known(params, everything)
        run_folder = args.runs_dir / check_run_name(args.name)
        check_destination(notebooks, run_folder)
    except RunnerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"Running {len(notebooks)} notebooks into {display_path(run_folder)}/", flush=True)
    results = run_all(notebooks, run_folder, params, declared, html=not args.no_html,
                      cell_timeout=args.cell_timeout, keep_checkpoints=args.keep_checkpoints)
    print(f"Summary: {display_path(run_folder / 'summary.md')}")
    failed = [r for r in results if r.status != "ok"]
    for r in failed:
        print(f"FAILED: {r.notebook}: {r.failure}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
