"""The search for answers in what students receive, shared by the leak tests.

``secrets()`` lists what no student file may hold: (a) every line of every solution block of
every master notebook (raw ``# BEGIN SOLUTION`` cells, in-cell ``# BEGIN SOLUTION`` / ``# END
SOLUTION``, trailing ``# SOLUTION``), with comments removed and whitespace collapsed, less the
lines the master shows anyway; (b) every line of every hidden test cell (``hidden: true``);
(c) every check function that only hidden tests import. ``find_leaks(folder, secrets())``
searches every text file under a folder: plain text, every string of a JSON file or notebook,
and the text an HTML page shows (tags removed, entities decoded, so code split into
highlighting spans is read as the line it is).

Used by tests/test_student_bundle_leaks.py (the student course bundle) and tests/test_book.py
(the book's student edition).
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

from course_utils.instructor.grading.export import cell_source, solution_lines
from course_utils.instructor.grading.release import is_master_notebook
from course_utils.paths import PROJECT_ROOT

MASTERS = [p for p in sorted((PROJECT_ROOT / "notebooks").glob("*.ipynb")) if is_master_notebook(p)]
# Shorter lines are not evidence: "return dx, dw, db" (17), "hout, wout = shape" or
# "loss.backward()" read the same in prose, in stubs and in the given code of any notebook, so
# they would match without leaking anything. Every solution line that carries an answer (a
# formula, a loop over kernel offsets, a call with the right arguments) is longer than this.
MIN_SECRET_LENGTH = 20
CHECK_MODULES = ("course_utils.exercise_checks", "course_utils.instructor")
SOLUTION_MARK = re.compile(r"# BEGIN SOLUTION( NO PROMPT)?$")
PROMPT_MARK = re.compile(r"# (BEGIN|END) PROMPT$")


@dataclass(frozen=True)
class Secret:
    """One string that must appear in no student file, and where it comes from."""

    text: str
    source: str


def strip_comment(line: str) -> str:
    """``line`` without its ``#`` comment (a ``#`` inside a string literal is kept)."""
    quote = None
    for index, char in enumerate(line):
        if quote:
            if char == "\\":
                continue
            if char == quote and line[index - 1] != "\\":
                quote = None
        elif char in "'\"":
            quote = char
        elif char == "#":
            return line[:index]
    return line


def collapse(text: str) -> str:
    return " ".join(text.split())


def normalise(line: str) -> str:
    """A code line as searched for: comment removed, whitespace collapsed."""
    return collapse(strip_comment(line))


def master_parts(master: Path) -> tuple[list[str], list[str], str, list[str], list[str]]:
    """(solution lines, hidden-test lines, public text, hidden-test cells, public-test cells).

    The public text is everything of the master that ships anyway: given code, prompts, public
    tests and prose outside solution blocks, normalised line by line.
    """
    solution, hidden, public = [], [], []
    hidden_cells, public_cells = [], []
    in_solution = in_tests = False
    for cell in json.loads(master.read_text(encoding="utf-8"))["cells"]:
        text = cell_source(cell)
        marker = text.strip().splitlines()[0] if text.strip() else ""
        if cell["cell_type"] == "raw":
            in_solution = {"# BEGIN SOLUTION": True, "# END SOLUTION": False}.get(marker,
                                                                                 in_solution)
            in_tests = {"# BEGIN TESTS": True, "# END TESTS": False}.get(marker, in_tests)
            continue
        if cell["cell_type"] == "markdown":
            (solution if in_solution else public).extend(collapse(x) for x in text.splitlines())
            continue
        if in_tests:
            is_hidden = re.search(r"^hidden: *true", text, re.MULTILINE) is not None
            (hidden_cells if is_hidden else public_cells).append(text)
            (hidden if is_hidden else public).extend(normalise(x) for x in text.splitlines())
            continue
        inside = False  # between in-cell solution markers
        for line in text.splitlines():
            stripped = line.rstrip()
            if SOLUTION_MARK.search(stripped):
                inside = True
            elif stripped.endswith("# END SOLUTION"):
                inside = False
            elif PROMPT_MARK.search(stripped):
                continue
            elif inside or (in_solution and re.search(r"# ?SOLUTION$", stripped)):
                solution.extend(normalise(x) for x in solution_lines([line]))
            else:  # given code, a prompt, or an unmarked line otter keeps
                public.append(normalise(line))
    return solution, hidden, "\n".join(public), hidden_cells, public_cells


def imported_checks(cells: list[str]) -> set[tuple[str, str]]:
    """(module, name) of every name test cells import from the check modules."""
    found = set()
    for text in cells:
        for node in ast.walk(ast.parse(re.sub(r"^\s*[%!].*$", "", text, flags=re.MULTILINE))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(CHECK_MODULES):
                found.update((node.module, alias.name) for alias in node.names)
    return found


def hidden_only_functions() -> dict[str, str]:
    """``{module.name: source}`` of the check functions only hidden tests import."""
    hidden, public = set(), set()
    for master in MASTERS:
        *_, hidden_cells, public_cells = master_parts(master)
        hidden |= imported_checks(hidden_cells)
        public |= imported_checks(public_cells)
    found = {}
    for module, name in sorted(hidden - public):
        path = PROJECT_ROOT.joinpath(*module.split(".")).with_suffix(".py")
        source = path.read_text(encoding="utf-8")
        for node in ast.parse(source).body:
            if isinstance(node, ast.FunctionDef | ast.ClassDef) and node.name == name:
                found[f"{module}.{name}"] = ast.get_source_segment(source, node)
    return found


def secrets() -> list[Secret]:
    """Everything no student file may hold, (a), (b) and (c) of the module docstring."""
    found: dict[str, Secret] = {}
    parts = {master: master_parts(master) for master in MASTERS}
    # a line any master shows outside its solutions (given code, prose) is no leak: 06's answer
    # unpacks "f, _, kh, kw = w.shape" as 07's given loop convolution does
    public = "\n".join(part[2] for part in parts.values())
    for master, (solution, hidden, *_) in parts.items():
        # a hidden test's imports name modules, not answers: (c) covers what they import
        hidden = [line for line in hidden if not line.startswith(("from ", "import "))]
        for kind, lines in (("solution", solution), ("hidden test", hidden)):
            for line in lines:
                if len(line) >= MIN_SECRET_LENGTH and line not in public:
                    found.setdefault(line, Secret(line, f"{master.name} {kind}"))
    for name, source in hidden_only_functions().items():
        signature = collapse(source.split("(", 1)[0]) + "("  # "def random_cases("
        found.setdefault(signature, Secret(signature, f"{name}, used by hidden tests only"))
    return list(found.values())


class _PageText(HTMLParser):
    """Collects the text of an HTML page, entities decoded (``&quot;`` -> ``"``)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def page_text(raw: str) -> str:
    """The text an HTML page holds, tags removed: a code block highlighted into one ``<span>``
    per token reads as its source lines again."""
    parser = _PageText()
    parser.feed(raw)
    parser.close()
    return "".join(parser.parts)


def file_text(path: Path) -> str | None:
    """A file's text as searched: its lines; for JSON, every string in it (JSON escapes
    quotes and newlines); for HTML, also the text the page shows (``page_text``); whitespace
    collapsed; None for binary files."""
    try:
        raw = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return None
    lines = raw.splitlines()
    if path.suffix in (".html", ".htm"):
        lines.extend(page_text(raw).splitlines())
    if path.suffix in (".ipynb", ".json"):
        stack = [json.loads(raw)]
        while stack:
            item = stack.pop()
            if isinstance(item, dict):
                stack.extend(item.values())
            elif isinstance(item, list):
                stack.extend(item)
            elif isinstance(item, str):
                lines.extend(item.splitlines())
    return "\n".join(collapse(line) for line in lines)


def find_leaks(folder: Path, items: list[Secret]) -> list[str]:
    """``"file: secret (source)"`` for every secret found in a text file under ``folder``."""
    found = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        text = file_text(path)
        if text is None:
            continue
        found += [f"{path.relative_to(folder)}: {s.text!r} ({s.source})"
                  for s in items if s.text in text]
    return found
