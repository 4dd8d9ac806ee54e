"""The student course bundle holds no answer and no hidden test (issue 15).

``make release`` writes ``dist/student-course/`` and its zip. Here one release into a temporary
``dist/`` is searched, with the student wheel built from it, for

(a) every line of every solution block of every master notebook (raw ``# BEGIN SOLUTION``
    cells, in-cell ``# BEGIN SOLUTION`` / ``# END SOLUTION``, trailing ``# SOLUTION``), with
    comments removed and whitespace collapsed, less the lines the master shows anyway;
(b) every line of every hidden test cell (``hidden: true``);
(c) every check function that only hidden tests import.

A planted answer line must be found, so the search is known to work. The search itself
(``secrets``, ``find_leaks``) lives in tests/leak_scan.py: the book's student edition is
searched the same way (tests/test_book.py).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from leak_scan import MASTERS, find_leaks, secrets

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
from course_utils.paths import PROJECT_ROOT


@pytest.fixture(scope="module")
def dist(course_release: Path) -> Path:
    """The session's ``make release`` into a temporary dist/ (tests/conftest.py)."""
    return course_release


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
