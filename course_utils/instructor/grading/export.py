"""Export the code a notebook teaches into the package: one copy, written in the notebook.

A master notebook marks its library cells with ``#| export`` (nbdev's marker) and names the
module once with ``#| default_exp NAME``; ``export_notebook`` writes those cells, in order, to
``course_utils/NAME.py`` with otter-grader's markers resolved to the solution:

- the lines from one ending in ``# BEGIN PROMPT`` to one ending in ``# END PROMPT`` (the
  student's stub, a string literal in the master notebook) are dropped;
- ``# BEGIN SOLUTION`` / ``# END SOLUTION`` marker lines are dropped, the solution kept;
- a trailing ``# SOLUTION`` comment is removed from its line.

``python -m course_utils.instructor.grading export`` (``make export``) writes every module;
``--check`` only compares, and ``tests/test_grading_export.py`` fails when one is stale.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from course_utils.paths import PROJECT_ROOT

NOTEBOOKS_DIR = PROJECT_ROOT / "notebooks"
PACKAGE_DIR = PROJECT_ROOT / "course_utils"

_DEFAULT_EXP = re.compile(r"^#\|\s*default_exp\s+([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)\s*$")
_EXPORT = re.compile(r"^#\|\s*export\s*$")
_DIRECTIVE = re.compile(r"^#\|")
_SOLUTION_SUFFIX = re.compile(r"\s*# ?SOLUTION( NO PROMPT)?\s*$")

HEADER = '''"""{title}

GENERATED from the cells marked ``#| export`` in {notebook} by
``python -m course_utils.instructor.grading export`` (``make export``): edit the notebook, not
this file.
``tests/test_grading_export.py`` fails when this file is stale.
"""
'''


def cell_source(cell: dict) -> str:
    """A notebook cell's source as one string (nbformat stores a string or a list of lines)."""
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def is_export_cell(cell: dict) -> bool:
    """Whether ``cell`` is a code cell whose first line is ``#| export``."""
    if cell.get("cell_type") != "code":
        return False
    lines = cell_source(cell).lstrip().splitlines()
    return bool(lines) and bool(_EXPORT.match(lines[0].strip()))


def solution_lines(lines: list[str]) -> list[str]:
    """``lines`` of a master-notebook cell with otter's markers resolved to the solution."""
    kept, in_prompt = [], False
    for line in lines:
        stripped = line.rstrip()
        if stripped.endswith("# BEGIN PROMPT"):
            in_prompt = True
            continue
        if stripped.endswith("# END PROMPT"):
            in_prompt = False
            continue
        if in_prompt or re.search(r"# (BEGIN|END) SOLUTION( NO PROMPT)?$", stripped):
            continue
        kept.append(_SOLUTION_SUFFIX.sub("", line) if _SOLUTION_SUFFIX.search(line) else line)
    if in_prompt:
        raise ValueError("a '# BEGIN PROMPT' line has no '# END PROMPT' after it")
    return kept


def module_name(notebook: dict) -> str | None:
    """The ``NAME`` of the first ``#| default_exp NAME`` line, or None."""
    for cell in notebook["cells"]:
        if cell.get("cell_type") == "code":
            for line in cell_source(cell).splitlines():
                match = _DEFAULT_EXP.match(line.strip())
                if match:
                    return match.group(1)
    return None


def render_module(notebook_path: Path) -> tuple[Path, str] | None:
    """(module path, module text) exported from ``notebook_path``; None if it exports nothing."""
    notebook = json.loads(Path(notebook_path).read_text(encoding="utf-8"))
    name = module_name(notebook)
    cells = [cell for cell in notebook["cells"] if is_export_cell(cell)]
    if name is None:
        if cells:
            raise ValueError(f"{notebook_path}: cells are marked '#| export' but no cell names "
                             "the module with '#| default_exp NAME'")
        return None
    blocks = []
    for cell in cells:
        lines = [line for line in cell_source(cell).splitlines() if not _DIRECTIVE.match(line)]
        text = "\n".join(solution_lines(lines)).strip("\n")
        if text:
            blocks.append(text)
    headings = [cell_source(c).lstrip("# ").splitlines()[0] for c in notebook["cells"]
                if c.get("cell_type") == "markdown" and cell_source(c).startswith("#")]
    title = (headings[0] if headings else name) + "."
    header = HEADER.format(title=title, notebook=f"notebooks/{Path(notebook_path).name}")
    module = PACKAGE_DIR.joinpath(*name.split(".")).with_suffix(".py")
    return module, header + "\n" + "\n\n\n".join(blocks) + "\n"


def export_all(notebooks: list[Path] | None = None, check: bool = False) -> list[Path]:
    """Write (or with ``check``, only compare) every exported module.

    Returns the modules that were stale (rewritten, or with ``check`` left as they are).
    """
    stale = []
    for path in notebooks or sorted(NOTEBOOKS_DIR.glob("*.ipynb")):
        rendered = render_module(path)
        if rendered is None:
            continue
        module, text = rendered
        current = module.read_text(encoding="utf-8") if module.exists() else None
        if current != text:
            stale.append(module)
            if not check:
                from course_utils.atomic import atomic_write_text

                atomic_write_text(module, text)
    return stale
