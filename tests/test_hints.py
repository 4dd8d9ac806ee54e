"""Hints teach the idea or the shape to check, never the code (issue 16).

Every hint a student can see (the stub's NotImplementedError message, the collapsed second
hint under each question, the public checks' hints in ``course_utils.exercise_checks``) is
compared with every line of the masters' solutions, whitespace removed: no solution line of
real content may appear in a hint.
"""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path

import pytest

from course_utils.instructor.grading.export import cell_source, solution_lines
from course_utils.paths import PROJECT_ROOT

MASTERS = sorted(p for p in (PROJECT_ROOT / "notebooks").glob("0*.ipynb")
                 if "# BEGIN QUESTION" in p.read_text(encoding="utf-8"))
CHECK_MODULES = ["parameters", "training", "timing", "chain_rule", "backprop", "im2col"]
#: A solution line shorter than this (``return out``, ``dx = 0``) says nothing a hint could give
#: away; the ones that matter (``dx = dout @ w``, ``loss.backward()``) are longer.
MIN_CHARS = 9
PROMPT = re.compile(r'""" # BEGIN PROMPT\n(.*?)""" # END PROMPT', re.DOTALL)
SECOND_HINT = re.compile(r"<summary>Second hint</summary>(.*?)</details>", re.DOTALL)


def squeeze(text: str) -> str:
    """``text`` without whitespace, so ``dx = dout @ w`` and ``dx=dout@w`` compare equal."""
    return re.sub(r"\s+", "", text)


def solution_code(master: Path) -> set[str]:
    """Every solution line of ``master`` (comments dropped), squeezed, of ``MIN_CHARS`` or more."""
    found, in_block = set(), False
    for cell in json.loads(master.read_text(encoding="utf-8"))["cells"]:
        text = cell_source(cell)
        if cell["cell_type"] == "raw":
            in_block = {"# BEGIN SOLUTION": True, "# END SOLUTION": False}.get(text.strip(),
                                                                              in_block)
            continue
        if not in_block or cell["cell_type"] != "code":
            continue
        lines = PROMPT.sub("", text).splitlines()
        for line in solution_lines(lines):
            code = squeeze(line.split("#", 1)[0])
            if len(code) >= MIN_CHARS and not code.startswith(('"""', "def", "#|")):
                found.add(code)
    return found


def hints(master: Path) -> list[str]:
    """The stub messages and second hints of ``master``."""
    texts = []
    for cell in json.loads(master.read_text(encoding="utf-8"))["cells"]:
        text = cell_source(cell)
        texts += PROMPT.findall(text) + SECOND_HINT.findall(text)
    return texts


def check_hints() -> list[str]:
    """The public checks' hint strings."""
    texts = []
    for name in CHECK_MODULES:
        module = importlib.import_module(f"course_utils.exercise_checks.{name}")
        table = getattr(module, "HINTS", None) or {"": getattr(module, "HINT", "")}
        texts += list(table.values())
    return texts


def leaked(hint_texts: list[str], solutions: set[str]) -> list[tuple[str, str]]:
    return [(code, hint[:120]) for hint in hint_texts for code in solutions
            if code in squeeze(hint)]


ALL_SOLUTIONS = set().union(*(solution_code(m) for m in MASTERS))


@pytest.mark.parametrize("master", MASTERS, ids=lambda p: p.stem)
def test_no_stub_message_or_second_hint_holds_solution_code(master: Path) -> None:
    texts = hints(master)
    assert len(texts) >= 2, f"{master.name}: every question needs a first and a second hint"
    assert not leaked(texts, ALL_SOLUTIONS)


def test_no_public_check_hint_holds_solution_code() -> None:
    texts = check_hints()
    assert len(texts) >= 15
    assert not leaked(texts, ALL_SOLUTIONS)


def test_every_code_question_has_a_second_hint() -> None:
    for master in MASTERS:
        text = master.read_text(encoding="utf-8")
        code_questions = text.count("# BEGIN QUESTION") - text.count("manual: true")
        assert text.count("<summary>Second hint</summary>") == code_questions, master.name


def test_the_comparison_catches_a_hint_that_gives_the_code() -> None:
    """The hint 06's check used to print: it wrote the answer, and the test must say so."""
    old = ("out = x @ w.T + b, so dx = dout @ w (N, D), dw = dout.T @ x (M, D) and "
           "db = dout summed over the batch axis (M,).")
    assert leaked([old], ALL_SOLUTIONS)
    assert len(ALL_SOLUTIONS) > 50
