"""``make release``: the student and autograder versions of a master notebook, with otter-grader.

The master notebook (``notebooks/NN_name.ipynb``) holds the prose, the solutions and the tests in
otter-grader 7's format: raw cells ``# BEGIN QUESTION`` / ``# BEGIN SOLUTION`` / ``# BEGIN
TESTS``; string-literal stubs between ``# BEGIN PROMPT`` and ``# END PROMPT``; ``hidden: true``
tests; exception-based test files. ``otter assign`` splits it; this module moves the result to

- ``dist/student/NN_name/``: the notebook with solutions replaced by the stubs, outputs
  cleared, hidden tests removed, plus ``tests/`` with the public tests only;
- ``dist/autograder/NN_name/``: the notebook with solutions, ``tests/`` with every test, and
  ``questions.json`` (each question's name, points, and whether it is graded by hand), which
  ``course_utils.instructor.grading.grade`` reads.

It then checks that no hidden test and no solution line reached the student folder.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from course_utils.atomic import atomic_write_json
from course_utils.instructor.grading.export import cell_source, solution_lines
from course_utils.instructor.grading.release_guard import (
    RECORD_NAME,
    folder_digests,
    protect_student_work,
    read_record,
)

SOLUTION_BEGIN = re.compile(r"# BEGIN SOLUTION")
#: Master-notebook text for instructors only, left out of every student copy.
INSTRUCTOR_BLOCK = re.compile(r"\n*<!-- instructor -->.*?<!-- /instructor -->\n*", re.DOTALL)
#: nbdev's ``#| default_exp NAME`` names the solutions module: not for students.
DIRECTIVE_LINE = re.compile(r"^#\|\s*default_exp\b.*\n?", re.MULTILINE)
MIN_LEAK_LENGTH = 25  # shorter solution lines ("return dx, dw, db") may also be prose or stubs


def is_master_notebook(path: Path) -> bool:
    """Whether the notebook has otter's ``# ASSIGNMENT CONFIG`` raw cell."""
    cells = json.loads(Path(path).read_text(encoding="utf-8"))["cells"]
    return any(c["cell_type"] == "raw" and cell_source(c).lstrip().startswith("# ASSIGNMENT CONFIG")
               for c in cells)


SANDBOX_LINE = re.compile(r"^# sandbox (allow_imports|memory_mb): (.+)$")


def sandbox_settings(master: Path) -> dict:
    """The grading sandbox's settings, from comment lines of the ``# ASSIGNMENT CONFIG`` cell
    (otter ignores comments; it refuses unknown keys):

        # sandbox allow_imports: [torch]   (answers that train with torch; default: none)
        # sandbox memory_mb: 6144          (importing torch alone reserves ~3.3 GB)
    """
    settings: dict = {}
    for cell in json.loads(Path(master).read_text(encoding="utf-8"))["cells"]:
        text = cell_source(cell)
        if cell["cell_type"] == "raw" and text.lstrip().startswith("# ASSIGNMENT CONFIG"):
            for line in text.splitlines():
                match = SANDBOX_LINE.match(line.strip())
                if match:
                    settings[match.group(1)] = yaml.safe_load(match.group(2))
    return settings


def questions(master: Path) -> list[dict]:
    """``[{"name", "points", "manual"}]`` from the master's ``# BEGIN QUESTION`` raw cells."""
    found = []
    for cell in json.loads(Path(master).read_text(encoding="utf-8"))["cells"]:
        text = cell_source(cell)
        if cell["cell_type"] == "raw" and text.lstrip().startswith("# BEGIN QUESTION"):
            config = yaml.safe_load(text.split("\n", 1)[1]) or {}
            points = config.get("points", 1)
            if isinstance(points, list):
                points = sum(points)
            found.append({"name": config["name"], "points": points,
                          "manual": bool(config.get("manual", False))})
    return found


def question_rows(master: Path) -> list[dict]:
    """One row per question of ``master``: name, kind (code, numeric or written), points and
    how many public and hidden tests it has (read from the master's raw marker cells)."""
    rows: list[dict] = []
    block = None
    for cell in json.loads(Path(master).read_text(encoding="utf-8"))["cells"]:
        text = cell_source(cell)
        if cell["cell_type"] == "raw":
            marker = text.strip().splitlines()[0] if text.strip() else ""
            if marker == "# BEGIN QUESTION":
                config = yaml.safe_load(text.split("\n", 1)[1]) or {}
                points = config.get("points", 1)
                rows.append({"name": config["name"], "points": sum(points)
                             if isinstance(points, list) else points,
                             "kind": "written" if config.get("manual") else "numeric",
                             "public": 0, "hidden": 0})
            elif marker in ("# BEGIN SOLUTION", "# BEGIN TESTS"):
                block = marker
            elif marker in ("# END SOLUTION", "# END TESTS"):
                block = None
            continue
        if not rows or cell["cell_type"] != "code":
            continue
        if block == "# BEGIN SOLUTION" and re.search(r"^def \w+\(", text, re.MULTILINE):
            rows[-1]["kind"] = "code"
        elif block == "# BEGIN TESTS":
            rows[-1]["hidden" if re.search(r"^hidden: *true", text, re.MULTILINE)
                     else "public"] += 1
    return rows


def questions_markdown(masters: list[Path]) -> str:
    """The README's table of every exercise question (``python -m course_utils.instructor.grading
    questions``)."""
    lines = ["| notebook | question | kind | points | public tests | hidden tests |",
             "|---|---|---|---|---|---|"]
    total = 0
    for master in masters:
        for row in question_rows(master):
            total += row["points"]
            tests = ("graded by hand", "") if row["kind"] == "written" else (
                row["public"], row["hidden"])
            lines.append(f"| {master.stem} | `{row['name']}` | {row['kind']} | {row['points']:g} "
                         f"| {tests[0]} | {tests[1]} |")
    lines.append(f"| **all** | {len(lines) - 2} questions | | {total:g} | | |")
    return "\n".join(lines) + "\n"


def solution_texts(master: Path) -> list[str]:
    """Lines that only the master's solution blocks hold (code and markdown), for leak checks.

    A line that also appears outside every solution block (in given code, say) is not a leak.
    """
    secret: list[str] = []
    public: set[str] = set()
    in_block = False
    for cell in json.loads(Path(master).read_text(encoding="utf-8"))["cells"]:
        text = cell_source(cell)
        if cell["cell_type"] == "raw":
            if text.strip() == "# BEGIN SOLUTION":
                in_block = True
            elif text.strip() == "# END SOLUTION":
                in_block = False
            continue
        lines = text.splitlines()
        if in_block and cell["cell_type"] == "markdown":
            secret.extend(line.strip() for line in lines)
            continue
        inside = False  # a solution block inside a code cell
        for line in lines:
            stripped = line.rstrip()
            if SOLUTION_BEGIN.search(stripped):
                inside = True
            elif stripped.endswith("# END SOLUTION"):
                inside = False
            elif inside or (in_block and re.search(r"# ?SOLUTION$", stripped)):
                secret.extend(s.strip() for s in solution_lines([line]))
            else:
                public.add(line.strip())
    return [line for line in secret if len(line) >= MIN_LEAK_LENGTH and line not in public]


def hidden_test_names(autograder_tests: Path) -> list[str]:
    """Names of the hidden test functions in an autograder ``tests/`` folder."""
    names = []
    for path in sorted(Path(autograder_tests).glob("*.py")):
        names += re.findall(r"hidden=True[^\n]*\)\s*\ndef (\w+)", path.read_text(encoding="utf-8"))
    return names


def leaks(student_dir: Path, master: Path, autograder_dir: Path) -> list[str]:
    """Solution lines and hidden test names found in any file under ``student_dir``."""
    text = "\n".join(p.read_text(encoding="utf-8", errors="replace")
                     for p in sorted(Path(student_dir).rglob("*")) if p.is_file())
    found = [f"solution line: {line}" for line in solution_texts(master) if line in text]
    found += [f"hidden test: {name}" for name in hidden_test_names(autograder_dir / "tests")
              if name in text]
    return found


def speak_to_students(notebook: Path) -> None:
    """Rewrite a released student notebook in place: instructor-only markdown blocks
    (``<!-- instructor -->`` ... ``<!-- /instructor -->``) and ``#| default_exp`` lines (which
    name where the solutions are exported) are removed; a cell left empty is dropped."""
    data = json.loads(notebook.read_text(encoding="utf-8"))
    cells = []
    for cell in data["cells"]:
        text = cell_source(cell)
        if cell["cell_type"] == "markdown":
            text = INSTRUCTOR_BLOCK.sub("\n\n", text).strip("\n")
        elif cell["cell_type"] == "code":
            text = DIRECTIVE_LINE.sub("", text)
        if text.strip() or not cell_source(cell).strip():  # drop only what the removal emptied
            cell["source"] = text
            cells.append(cell)
    data["cells"] = cells
    atomic_write_json(notebook, data)


#: One Python process runs ``otter assign`` on every (master, result) pair of its arguments:
#: importing otter costs seconds, assigning a notebook much less.
_ASSIGN_SCRIPT = (
    "import sys\n"
    "from otter.assign import main\n"
    "for master, result in zip(sys.argv[1::2], sys.argv[2::2]):\n"
    "    try:\n"
    "        main(master, result, no_pdfs=True, no_run_tests=True)\n"
    "    except BaseException as error:\n"
    "        sys.exit(f'otter assign failed on {master}: {error!r}')\n")


def otter_assign(masters: list[Path], tmp: Path) -> dict[Path, Path]:
    """Run ``otter assign`` on each master in one process; return ``{master: its dist folder}``
    (``tmp/<name>/dist``, holding ``student/`` and ``autograder/``). RuntimeError naming the
    notebook if otter fails on one."""
    results = {master: Path(tmp) / master.stem / "dist" for master in masters}
    arguments = [str(part) for master, result in results.items() for part in (master, result)]
    completed = subprocess.run([sys.executable, "-c", _ASSIGN_SCRIPT, *arguments],
                               capture_output=True, text=True)
    if completed.returncode != 0:
        raise RuntimeError(f"{completed.stdout}\n{completed.stderr}")
    return results


def _finish_release(master: Path, assigned: Path, out: Path, backup: bool) -> tuple[Path, Path]:
    """Move one master's ``otter assign`` output (``assigned``) into ``out`` (see ``release``)."""
    name = master.stem
    speak_to_students(assigned / "student" / master.name)
    written = folder_digests(assigned / "student")
    record = read_record(out / "autograder" / name) or written
    moved = protect_student_work(out / "student" / name, record, out, backup=backup)
    if moved:
        print(f"{name}: the student folder held changed work: moved to {moved}",
              file=sys.stderr)
    targets = {}
    for kind in ("student", "autograder"):
        target = out / kind / name
        if target.exists():
            shutil.rmtree(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(assigned / kind), target)
        targets[kind] = target
    atomic_write_json(targets["autograder"] / RECORD_NAME, written)
    atomic_write_json(targets["autograder"] / "questions.json",
                      {"assignment": name, "notebook": master.name,
                       "questions": questions(master),
                       "sandbox": sandbox_settings(master)})
    found = leaks(targets["student"], master, targets["autograder"])
    if found:
        shutil.rmtree(targets["student"])
        raise RuntimeError(f"{master.name}: the student version would leak, so it was deleted:\n"
                           + "\n".join(found))
    return targets["student"], targets["autograder"]


def release_all(masters: list[Path], out: Path,
                backup: bool = False) -> dict[Path, tuple[Path, Path]]:
    """``release`` for several masters, with one ``otter assign`` process for all of them;
    return ``{master: (student folder, autograder folder)}``."""
    masters = [Path(m).resolve() for m in masters]
    out = Path(out).resolve()
    with tempfile.TemporaryDirectory(prefix="release-") as tmp:
        assigned = otter_assign(masters, Path(tmp))
        return {master: _finish_release(master, assigned[master], out, backup)
                for master in masters}


def release(master: Path, out: Path, backup: bool = False) -> tuple[Path, Path]:
    """Run ``otter assign`` on ``master``; return (student folder, autograder folder).

    A student folder already in ``out`` that holds work this module did not write (answers,
    an export zip, ``.OTTER_LOG``) is never overwritten: RuntimeError, or with ``backup`` it
    is moved to ``out/student-backup/`` first (see ``release_guard``)."""
    master = Path(master).resolve()
    return release_all([master], out, backup)[master]
