"""The code notebook 07 teaches is written once, in the notebook, and exported into the package.

``course_utils/instructor/solutions/im2col.py`` is generated from the cells marked ``#| export``
(solutions in, the students' stubs out); this test fails when the module is stale, i.e.
someone edited the notebook without ``make export`` or edited the generated module by hand.
"""

from __future__ import annotations

import json
from pathlib import Path

from course_utils.instructor.grading.export import export_all, render_module, solution_lines
from course_utils.paths import PROJECT_ROOT

MASTER = PROJECT_ROOT / "notebooks" / "07_im2col_and_fold.ipynb"


def test_exported_module_is_up_to_date() -> None:
    stale = export_all(check=True)
    assert not stale, (f"{[str(p.relative_to(PROJECT_ROOT)) for p in stale]} differ from the "
                       "notebooks' `#| export` cells: run `make export`")


def test_exported_module_holds_the_solutions_not_the_stubs() -> None:
    module, text = render_module(MASTER)
    assert module == PROJECT_ROOT / "course_utils" / "instructor" / "solutions" / "im2col.py"
    for name in ("im2col_matrix", "im2col", "col2im_matrix", "col2im", "conv_forward",
                 "conv_backward", "conv_forward_loops", "conv_output_size"):
        assert f"\ndef {name}(" in text
    assert "NotImplementedError" not in text and "BEGIN" not in text and "# SOLUTION" not in text
    compile(text, str(module), "exec")


def test_only_instructor_code_imports_the_solutions() -> None:
    """The student package never imports a solution module: it takes the student's functions
    as arguments (the student bundle ships without ``instructor/``)."""
    package = PROJECT_ROOT / "course_utils"
    for path in sorted(package.rglob("*.py")):
        if (package / "instructor") in path.parents:
            continue
        text = path.read_text(encoding="utf-8")
        assert "instructor" not in "\n".join(
            line for line in text.splitlines() if line.lstrip().startswith(("import ", "from "))
        ), path


def test_an_edited_notebook_makes_the_module_stale(tmp_path: Path) -> None:
    notebook = json.loads(MASTER.read_text(encoding="utf-8"))
    for cell in notebook["cells"]:
        source = "".join(cell["source"])
        if cell["cell_type"] == "code" and "def conv_output_size(" in source:
            cell["source"] = source.replace("// stride + 1", "// stride + 2")
    copy = tmp_path / MASTER.name
    copy.write_text(json.dumps(notebook), encoding="utf-8")
    _, text = render_module(copy)
    module = PROJECT_ROOT / "course_utils" / "instructor" / "solutions" / "im2col.py"
    assert text != module.read_text(encoding="utf-8")


def test_solution_lines_resolve_otter_markers() -> None:
    lines = ['def f(x):', '    """ # BEGIN PROMPT', '    raise NotImplementedError("hint")',
             '    """ # END PROMPT', '    # BEGIN SOLUTION NO PROMPT', '    y = 2 * x',
             '    # END SOLUTION', '    return y', 'z = 3  # SOLUTION']
    assert solution_lines(lines) == ['def f(x):', '    y = 2 * x', '    return y', 'z = 3']


def test_every_exported_module_holds_solutions_and_imports_no_course_code() -> None:
    """Each master's module: the solutions, not the stubs; and it imports nothing from
    course_utils, so the grading sandbox (which blocks course_utils) can run the same cells."""
    modules = [render_module(p) for p in sorted((PROJECT_ROOT / "notebooks").glob("*.ipynb"))]
    modules = [m for m in modules if m is not None]
    assert len(modules) >= 2
    for module, text in modules:
        assert "NotImplementedError(" not in text and "BEGIN PROMPT" not in text, module
        assert "course_utils" not in "\n".join(
            line for line in text.splitlines() if line.lstrip().startswith(("import ", "from "))
        ), module
        compile(text, str(module), "exec")


INSTRUCTOR_WORDS = ("make release", "make export", "make grade", "papermill", "Instructors",
                    "instructor/", "solutions module", "#| default_exp")


def test_student_copies_hold_no_instructor_text(tmp_path: Path) -> None:
    """What `make release` leaves of every master's text says nothing of how the course is
    built or where its solutions live (issue 16): instructor-only blocks and the export
    target are removed; the raw config cells are otter's to remove."""
    from course_utils.instructor.grading.release import speak_to_students

    for master in sorted((PROJECT_ROOT / "notebooks").glob("*.ipynb")):
        copy = tmp_path / master.name
        copy.write_text(master.read_text(encoding="utf-8"), encoding="utf-8")
        speak_to_students(copy)
        for cell in json.loads(copy.read_text(encoding="utf-8"))["cells"]:
            if cell["cell_type"] == "raw":
                continue
            text = "".join(cell["source"])
            found = [w for w in INSTRUCTOR_WORDS if w in text]
            assert not found, (master.name, found, text[:300])


def test_speak_to_students_removes_blocks_and_drops_emptied_cells(tmp_path: Path) -> None:
    from course_utils.instructor.grading.release import speak_to_students

    cells = [{"cell_type": "markdown", "metadata": {}, "source": "For you.\n\n<!-- instructor -->\n"
              "run make grade\n<!-- /instructor -->\n\nAlso for you."},
             {"cell_type": "markdown", "metadata": {},
              "source": "<!-- instructor -->\nonly instructors\n<!-- /instructor -->"},
             {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
              "source": "#| export\n#| default_exp instructor.solutions.x\nx = 1\n"},
             {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
              "source": ""}]
    path = tmp_path / "n.ipynb"
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4,
                                "nbformat_minor": 5}), encoding="utf-8")
    speak_to_students(path)
    kept = [c["source"] for c in json.loads(path.read_text(encoding="utf-8"))["cells"]]
    assert kept == ["For you.\n\nAlso for you.", "#| export\nx = 1\n", ""]


def test_public_tests_carry_no_points() -> None:
    """Marks come from the hidden tests: a student who answers the public tests from a table
    of their expected outputs (their inputs ship with the release) scores nothing (issue 16)."""
    checked = 0
    for master in sorted((PROJECT_ROOT / "notebooks").glob("0*.ipynb")):
        in_tests = False
        for cell in json.loads(master.read_text(encoding="utf-8"))["cells"]:
            text = "".join(cell["source"])
            if cell["cell_type"] == "raw":
                first = text.strip().splitlines()[0] if text.strip() else ""
                in_tests = first == "# BEGIN TESTS" or (in_tests and first != "# END TESTS")
            elif in_tests and cell["cell_type"] == "code" and "hidden: true" not in text:
                assert "\npoints: 0\n" in text, (master.name, text[:200])
                checked += 1
    assert checked >= 17
