"""``make release``'s last step: the student course bundle, a folder and a zip to hand out.

``build_bundle(dist)`` reads what ``release`` wrote into ``dist/student/`` and writes

- ``dist/student-course/``: ``notebooks/<NN_name>/`` (the student notebook and its public
  ``tests/``; notebooks without exercises as copies with outputs cleared), ``course_utils/``
  (the package without ``instructor/``: no solution, no hidden check, no grader), the committed
  ``results/*.json`` the notebooks read, a ``pyproject.toml`` declaring only what the shipped
  files import, and a ``README.md`` for students;
- ``dist/student-course.zip``: the same folder, zipped.

Both are written atomically: the folder is built beside the target and renamed, the zip is
written to a temporary name and renamed, so a failed build never leaves half a bundle.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import sys
import tempfile
import tomllib
import zipfile
from pathlib import Path

from course_utils.atomic import atomic_write, atomic_write_text
from course_utils.paths import PROJECT_ROOT

BUNDLE_NAME = "student-course"
STUDENT_PROJECT = "course-student"
PACKAGE = "course_utils"
#: Subpackages that never ship: the generated solutions, the hidden checks and the grader.
PRIVATE_PARTS = ("instructor",)
#: Committed results the shipped package reads (fps_results.py, train_curves.py); optional.
RESULT_FILES = ("results/gpu_fps.json", "results/gpu_train_curves.json",
                "results/cpu_train_curves.json")
#: Import name -> distribution name, for every third-party module a shipped file may import.
IMPORT_DISTRIBUTIONS = {
    "torch": "torch", "torchvision": "torchvision", "numpy": "numpy", "pandas": "pandas",
    "matplotlib": "matplotlib", "PIL": "pillow", "yaml": "pyyaml", "tqdm": "tqdm",
    "ipywidgets": "ipywidgets", "otter": "otter-grader", "IPython": "ipykernel",
    "packaging": "packaging", "nbformat": "nbformat",
}
#: Needed to open and check the notebooks, whatever the code imports.
ALWAYS = ("jupyterlab", "ipykernel", "otter-grader")
#: The student's torch: the repository pins the release on this machine's disk (2.14.1); a
#: student may take any release the code runs on (a newer one pulls a multi-GB CUDA build).
STUDENT_PINS = {"torch": "torch>=2.13,<2.15", "torchvision": "torchvision>=0.28,<0.30"}
_MAGIC = re.compile(r"^\s*[%!]")  # IPython magics and shell escapes: not Python


def _distribution(requirement: str) -> str:
    """The normalised distribution name of a requirement string ("PyYAML>=6" -> "pyyaml")."""
    name = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement).group(1)
    return re.sub(r"[-_.]+", "-", name).lower()


def repository_requirements(pyproject: Path = PROJECT_ROOT / "pyproject.toml") -> dict[str, str]:
    """``{distribution: requirement}`` of the repository's base ``dependencies`` (the student
    set: test, instructor and browser tools are extras)."""
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    return {_distribution(req): req for req in project["dependencies"]}


def code_imports(source: str, where: str) -> set[str]:
    """Absolute module names imported anywhere in ``source`` (Python or a notebook cell)."""
    source = "\n".join("" if _MAGIC.match(line) else line for line in source.splitlines())
    try:
        tree = ast.parse(source)
    except SyntaxError as error:
        raise ValueError(f"{where}: not valid Python ({error.msg}, line {error.lineno}); "
                         "fix the cell or file before releasing") from None
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
    return found


def file_imports(path: Path) -> set[str]:
    """Modules imported by a ``.py`` file or by the code cells of a notebook."""
    if path.suffix == ".py":
        return code_imports(path.read_text(encoding="utf-8"), str(path))
    found: set[str] = set()
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    for number, cell in enumerate(cells, 1):
        if cell["cell_type"] == "code":
            source = cell["source"]
            text = "".join(source) if isinstance(source, list) else source
            found |= code_imports(text, f"{path}, cell {number}")
    return found


def shipped_code(bundle: Path) -> list[Path]:
    """Every Python file and notebook in a bundle folder."""
    return sorted(p for p in bundle.rglob("*") if p.suffix in (".py", ".ipynb") and p.is_file())


def _ships_module(bundle: Path, module: str) -> bool:
    base = bundle.joinpath(*module.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def check_internal_imports(bundle: Path) -> None:
    """ValueError naming each shipped file that imports a ``course_utils`` module the bundle
    lacks (an ``instructor`` module, say: the student's kernel would fail on it)."""
    missing = [f"{path.relative_to(bundle)} imports {module}"
               for path in shipped_code(bundle) for module in sorted(file_imports(path))
               if module.split(".")[0] == PACKAGE and not _ships_module(bundle, module)]
    if missing:
        raise ValueError("the student bundle does not ship these modules (course_utils/"
                         "instructor/ never ships): move what students need out of instructor/ "
                         "or stop importing it:\n  " + "\n  ".join(missing))


def student_requirements(bundle: Path, declared: dict[str, str] | None = None) -> list[str]:
    """The requirements of the student ``pyproject.toml``: the distribution of every
    third-party module a shipped file imports, plus ``ALWAYS``, pinned as the repository does.

    ValueError naming the file when an import has no known distribution, or when its
    distribution is not among the repository's base dependencies.
    """
    declared = repository_requirements() if declared is None else declared
    needed: dict[str, str] = {name: "(always)" for name in ALWAYS}
    unknown = []
    for path in shipped_code(bundle):
        for module in file_imports(path):
            top = module.split(".")[0]
            if top in sys.stdlib_module_names or top in (PACKAGE, "__future__"):
                continue
            if top not in IMPORT_DISTRIBUTIONS:
                unknown.append(f"{path.relative_to(bundle)} imports {top}")
            else:
                needed.setdefault(IMPORT_DISTRIBUTIONS[top], str(path.relative_to(bundle)))
    if unknown:
        raise ValueError("no distribution known for these imports: add each to "
                         "IMPORT_DISTRIBUTIONS in course_utils/instructor/grading/bundle.py and "
                         "to pyproject.toml's dependencies:\n  " + "\n  ".join(sorted(unknown)))
    undeclared = sorted(f"{name} (imported by {where})" for name, where in needed.items()
                        if name not in declared)
    if undeclared:
        raise ValueError("pyproject.toml's base dependencies lack what the student bundle "
                         "imports: add " + ", ".join(undeclared))
    return sorted(STUDENT_PINS.get(name, declared[name]) for name in needed)


def cleared_notebook(path: Path) -> str:
    """A notebook's JSON with every output and execution count removed (nbformat's layout)."""
    notebook = json.loads(path.read_text(encoding="utf-8"))
    for cell in notebook["cells"]:
        cell.get("metadata", {}).pop("execution", None)  # papermill's timings
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
    return json.dumps(notebook, indent=1, ensure_ascii=False) + "\n"


def _is_master(path: Path) -> bool:
    text = path.read_text(encoding="utf-8")
    return "# ASSIGNMENT CONFIG" in text or "# BEGIN SOLUTION" in text


def _copy_notebooks(dist: Path, course: Path, notebooks: list[Path]) -> None:
    for notebook in notebooks:
        target = course / "notebooks" / notebook.stem
        student = dist / "student" / notebook.stem
        if not _is_master(notebook):  # no exercises: the lesson itself, outputs cleared
            atomic_write_text(target / notebook.name, cleared_notebook(notebook))
            continue
        if not (student / notebook.name).is_file():
            raise FileNotFoundError(f"{student / notebook.name} is missing: release "
                                    f"{notebook.name} first (make release)")
        target.mkdir(parents=True)
        shutil.copy2(student / notebook.name, target / notebook.name)
        # the public tests only; otter's logs and zips stay behind
        shutil.copytree(student / "tests", target / "tests",
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


def _copy_package(course: Path) -> None:
    source = PROJECT_ROOT / PACKAGE

    def ignore(folder: str, names: list[str]) -> set[str]:
        private = set(PRIVATE_PARTS) if Path(folder) == source else set()
        build_files = {n for n in names if n == "__pycache__" or n.endswith((".pyc", ".egg-info"))}
        return private | build_files

    shutil.copytree(source, course / PACKAGE, ignore=ignore)


def pyproject_text(requirements: list[str]) -> str:
    """The student ``pyproject.toml``: the package and its imports, nothing for tests."""
    version = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text(encoding="utf-8"))[
        "project"]["version"]
    deps = "".join(f'    "{req}",\n' for req in requirements)
    return (f'[build-system]\nrequires = ["setuptools>=68"]\n'
            f'build-backend = "setuptools.build_meta"\n\n'
            f'[project]\nname = "{STUDENT_PROJECT}"\nversion = "{version}"\n'
            f'description = "Course notebooks, their public checks and the helper package"\n'
            f'readme = "README.md"\nrequires-python = ">=3.11,<3.12"\n'
            f"# What the notebooks and course_utils import (found by `make release`),\n"
            f"# plus JupyterLab and otter-grader to open and check them.\n"
            f"dependencies = [\n{deps}]\n\n"
            f'[tool.setuptools.packages.find]\ninclude = ["{PACKAGE}*"]\n')


README = """# Neural networks course: the student notebooks

## Install (once)
Needs Python 3.11. In this folder:

```bash
python3 -m venv .venv && .venv/bin/pip install -e .
```

That one command installs the course's helper package (`course_utils`) and everything the
notebooks import, torch included, from the Python package index (on Linux that torch is the
CUDA build, a few GB; on a machine without a GPU you may first run
`.venv/bin/pip install torch --index-url https://download.pytorch.org/whl/cpu`).

## Read, then work
Your instructor may publish the course as a website (the *student edition* of the course's
book: every chapter with its formulas, figures and checks, each exercise as its question and
the stub you fill in). Read there, with nothing installed; write and run the code here, in
JupyterLab:

```bash
.venv/bin/jupyter lab notebooks/
```

(add `--allow-root` if you run as root). Open the notebooks in order, `01_*` first; each sits
in its own folder with its `tests/`. Choose the kernel *Python 3 (ipykernel)* if asked.

The built-in dataset (seeded synthetic images) is built into `data/sample/` the first time a
notebook needs it; to build it beforehand:
`.venv/bin/python -m course_utils.part_one.dataset_generator`.

## Check your answers
Write your code where a cell says `raise NotImplementedError(...)` or `...`, run it, then run
the `grader.check("name")` cell below it: it runs the public tests and says whether they
passed. The grade uses more tests than these, so passing is a good sign, not a promise.

## Submit
Save the notebook first (Ctrl+S: answers typed but not saved are not in the file), then, from
this folder:

```bash
.venv/bin/python -m course_utils.submit \\
    notebooks/07_im2col_and_fold/07_im2col_and_fold.ipynb --student your-id
```

It writes `submissions/your-id__07_im2col_and_fold.zip` (your id and the assignment, read from
the notebook itself), the name the grader reads: hand in that file. It refuses a notebook whose
saved file has no answer yet, a `--assignment` that is not the notebook's, and an existing zip
of the same assignment (`--replace` replaces it, and says "replaced"). The notebook's last
cell, `grader.export(...)`, also writes a zip, named for the notebook and the time, not for
you: rename it `your-id__<notebook>.zip` before handing it in.
"""


def _build_course(dist: Path, course: Path, notebooks: list[Path]) -> None:
    _copy_notebooks(dist, course, notebooks)
    _copy_package(course)
    for name in RESULT_FILES:
        if (PROJECT_ROOT / name).is_file():
            (course / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(PROJECT_ROOT / name, course / name)
    check_internal_imports(course)
    atomic_write_text(course / "pyproject.toml", pyproject_text(student_requirements(course)))
    atomic_write_text(course / "README.md", README)
    # temporary files are private (0600); what students unzip should be readable as usual
    for path in (course, *course.rglob("*")):
        path.chmod(0o755 if path.is_dir() else 0o644)


def _write_zip(folder: Path, target: Path) -> None:
    def write(handle) -> None:
        with zipfile.ZipFile(handle, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(folder.rglob("*")):
                if path.is_file():
                    # one top folder, so unzipping never scatters files into the current one
                    archive.write(path, Path(folder.name) / path.relative_to(folder))

    atomic_write(target, write).chmod(0o644)


def build_bundle(dist: Path, notebooks: list[Path] | None = None) -> tuple[Path, Path]:
    """Write ``dist/student-course/`` and ``dist/student-course.zip``; return both paths.

    Inputs:
    - dist: the folder ``release`` wrote ``student/<NN_name>/`` into.
    - notebooks: the course notebooks to ship (default: every ``notebooks/*.ipynb``); masters
      ship as their released student version, the others as copies with outputs cleared.

    Raises FileNotFoundError when a master's student version is missing, ValueError when a
    shipped file imports what the bundle does not ship or declare.
    """
    dist = Path(dist).resolve()
    notebooks = sorted(notebooks or (PROJECT_ROOT / "notebooks").glob("*.ipynb"))
    target, archive = dist / BUNDLE_NAME, dist / f"{BUNDLE_NAME}.zip"
    dist.mkdir(parents=True, exist_ok=True)
    build = Path(tempfile.mkdtemp(prefix=f".{BUNDLE_NAME}-", dir=dist))
    try:
        course = build / BUNDLE_NAME
        _build_course(dist, course, notebooks)
        _write_zip(course, archive)
        old = build / "previous"
        if target.exists():
            os.replace(target, old)  # moved aside, not deleted, until the new one is in place
        os.replace(course, target)
    finally:
        shutil.rmtree(build, ignore_errors=True)
    return target, archive
