"""The student course bundle holds no answer and no hidden test (issue 15).

``make release`` writes ``dist/student-course/`` and its zip. Here one release into a temporary
``dist/`` is searched, with the student wheel built from it, for

(a) every line of every solution block of every master notebook (raw ``# BEGIN SOLUTION``
    cells, in-cell ``# BEGIN SOLUTION`` / ``# END SOLUTION``, trailing ``# SOLUTION``), with
    comments removed and whitespace collapsed, less the lines the master shows anyway;
(b) every line of every hidden test cell (``hidden: true``);
(c) every check function that only hidden tests import.

A planted answer line must be found, so the search is known to work.
"""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from course_utils.instructor.grading.bundle import (
    BUNDLE_NAME,
    IMPORT_DISTRIBUTIONS,
    PACKAGE,
    check_internal_imports,
    file_imports,
    repository_requirements,
    shipped_code,
    student_requirements,
)
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


def file_text(path: Path) -> str | None:
    """A file's text as searched: its lines and, for JSON, every string in it (JSON escapes
    quotes and newlines), whitespace collapsed; None for binary files."""
    try:
        raw = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return None
    lines = raw.splitlines()
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


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One ``make release`` (the command line, bundle included) into a temporary dist/."""
    out = tmp_path_factory.mktemp("release") / "dist"
    result = subprocess.run([sys.executable, "-m", "course_utils.instructor.grading", "release",
                             "--out", str(out)], capture_output=True, text=True, cwd=PROJECT_ROOT)
    assert result.returncode == 0, f"make release failed:\n{result.stdout}\n{result.stderr}"
    return out


@pytest.fixture(scope="module")
def searched(dist: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The three places a student gets files from: the folder, the unpacked zip, the wheel."""
    work = tmp_path_factory.mktemp("searched")
    with zipfile.ZipFile(dist / f"{BUNDLE_NAME}.zip") as archive:
        archive.extractall(work / "zip")
    source = shutil.copytree(dist / BUNDLE_NAME, work / "wheel-source")  # builds write into it
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "--quiet", "-w", str(work / "wheel"), str(source)], check=True)
    wheels = list((work / "wheel").glob("*.whl"))
    assert len(wheels) == 1, wheels
    with zipfile.ZipFile(wheels[0]) as archive:
        archive.extractall(work / "wheel-unpacked")
    return {"bundle": dist / BUNDLE_NAME, "zip": work / "zip" / BUNDLE_NAME,
            "wheel": work / "wheel-unpacked"}


def test_secrets_cover_every_master() -> None:
    items = secrets()
    sources = {s.source.split(" ", 1)[0] for s in items}
    print(f"checking {len(items)} lines: "
          f"{sum('solution' in s.source for s in items)} solution, "
          f"{sum('hidden test' in s.source for s in items)} hidden test, hidden-only checks: "
          f"{sorted(s.source.split(',')[0] for s in items if 'hidden tests only' in s.source)}")
    assert {m.name for m in MASTERS} <= sources, "a master contributed no secret line"


@pytest.mark.parametrize("place", ["bundle", "zip", "wheel"])
def test_no_solution_or_hidden_test_ships(searched: dict[str, Path], place: str) -> None:
    leaks = find_leaks(searched[place], secrets())
    assert not leaks, f"the student {place} holds answers:\n" + "\n".join(leaks[:40])


@pytest.mark.parametrize("place", ["bundle", "zip", "wheel"])
def test_no_instructor_code_fixture_or_master_ships(searched: dict[str, Path], place: str) -> None:
    folder = searched[place]
    files = [p.relative_to(folder) for p in folder.rglob("*") if p.is_file()]
    assert not [f for f in files if "instructor" in f.parts], "instructor/ shipped"
    assert not [f for f in files if "fixtures" in f.parts], "test fixtures shipped"
    masters = [f for f in files if f.suffix == ".ipynb" and re.search(
        r"# BEGIN SOLUTION|# ASSIGNMENT CONFIG", (folder / f).read_text(encoding="utf-8"))]
    assert not masters, f"master notebooks shipped: {masters}"


def test_a_planted_answer_line_is_found(searched: dict[str, Path], tmp_path: Path) -> None:
    items = secrets()
    planted = next(s for s in items if "solution" in s.source)
    copy = shutil.copytree(searched["bundle"], tmp_path / "bundle")
    with (copy / PACKAGE / "report.py").open("a", encoding="utf-8") as handle:
        handle.write(f"\n        {planted.text}    # indented and commented differently\n")
    leaks = find_leaks(copy, items)
    assert any(planted.text in leak and "report.py" in leak for leak in leaks), leaks


def test_bundle_ships_every_notebook_and_only_public_tests(dist: Path) -> None:
    course = dist / BUNDLE_NAME
    shipped = sorted(p.name for p in (course / "notebooks").iterdir())
    assert shipped == [p.stem for p in sorted((PROJECT_ROOT / "notebooks").glob("*.ipynb"))]
    for master in MASTERS:
        tests = sorted(p.name for p in (course / "notebooks" / master.stem / "tests").iterdir())
        assert tests == sorted(p.name for p in (dist / "student" / master.stem / "tests").iterdir())
    extras = [p for p in course.rglob("*") if p.name.startswith(".") or p.suffix == ".zip"]
    assert not extras, f"otter's logs or zips shipped: {extras}"


def test_every_shipped_import_is_declared(dist: Path) -> None:
    course = dist / BUNDLE_NAME
    declared = {re.match(r"[\w.-]+", r).group(0).lower() for r in tomllib.loads(
        (course / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]}
    undeclared = []
    for path in shipped_code(course):
        for module in file_imports(path):
            top = module.split(".")[0]
            if top in sys.stdlib_module_names or top in (PACKAGE, "__future__"):
                continue
            if IMPORT_DISTRIBUTIONS.get(top) not in declared:
                undeclared.append(f"{path.relative_to(course)}: {module}")
    assert not undeclared, f"imports whose distribution the bundle does not declare: {undeclared}"
    for tool in ("pytest", "ruff", "hypothesis", "playwright", "nbval", "papermill"):
        assert tool not in declared, f"{tool} is not for students"


def test_repository_base_dependencies_are_the_students(dist: Path) -> None:
    course = dist / BUNDLE_NAME
    student = {re.match(r"[\w.-]+", r).group(0).lower() for r in tomllib.loads(
        (course / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]}
    assert student == set(repository_requirements()), \
        "pyproject.toml's base dependencies should be exactly what the student bundle imports"


def test_an_undeclared_import_stops_the_build(tmp_path: Path) -> None:
    (tmp_path / PACKAGE).mkdir()
    (tmp_path / PACKAGE / "extra.py").write_text("import numpy\nimport sklearn\n")
    with pytest.raises(ValueError, match="extra.py imports sklearn"):
        student_requirements(tmp_path, {"numpy": "numpy>=1.26"})
    (tmp_path / PACKAGE / "extra.py").write_text("import numpy\nimport torch\n")
    with pytest.raises(ValueError, match="lack what the student bundle imports: .*torch"):
        student_requirements(tmp_path, {"numpy": "numpy>=1.26", "jupyterlab": "jupyterlab",
                                        "ipykernel": "ipykernel", "otter-grader": "otter-grader"})


def test_importing_what_the_bundle_lacks_stops_the_build(tmp_path: Path) -> None:
    (tmp_path / PACKAGE / "part_two").mkdir(parents=True)
    for name in ("__init__.py", "part_two/__init__.py", "part_two/scratch.py"):
        (tmp_path / PACKAGE / name).write_text("")
    (tmp_path / PACKAGE / "part_two" / "scratch.py").write_text(
        "from course_utils.part_two import scratch\n"
        "from course_utils.instructor.solutions.im2col import im2col\n")
    with pytest.raises(ValueError, match="scratch.py imports course_utils.instructor.solutions"):
        check_internal_imports(tmp_path)
