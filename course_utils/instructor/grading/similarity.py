"""Near-identical answers: for every code question, the pairs of submissions whose answer code
is the same after normalising names, comments, docstrings and formatting, ranked.

Normalising: the answer is parsed (``ast``), its docstrings and bare string statements dropped
(the given prompt text too) and unparsed, which drops comments and fixes the layout; then
``copydetect`` (MIT) turns it into pygments tokens with every variable, attribute and function
name replaced by one letter, and fingerprints its k-grams (winnowing, as in the MOSS paper).
An answer longer than ``MAX_ANSWER_CHARS``, or one the tokenizer fails on, is left out.
The stub's fingerprints are *boilerplate* (every student shares the stub), so they never
count as shared; an answer still equal to the stub is not an answer.
The master's solution is not a submission: it is in no pair, and answers near-identical to it
are listed apart (both sides equal the reference: it says nothing about who copied whom).

A pair's similarity is the smaller of the two shares of each answer's fingerprints found in
the other (1.0: each answer is wholly in the other).
"""

from __future__ import annotations

import ast
import io
import re
from dataclasses import dataclass

import numpy as np

from course_utils.instructor.grading.export import cell_source

ANSWER_TAGS = {"otter_answer_cell", "otter_assign_solution_cell"}
CHECK = re.compile(r"""grader\.check\(\s*["']([^"']+)["']""")
K_GRAM = 12  # characters of normalised code per fingerprint (answers are short functions)
THRESHOLD = 0.8
MAX_ANSWER_CHARS = 100_000  # longer answers (pasted data, generated code) are not compared


@dataclass
class Pair:
    """Two students' answers to one question and how much of each is in the other."""

    question: str
    first: str
    second: str
    similarity: float  # min of the two shares, 0..1
    shares: tuple[float, float]


def _tags(cell: dict) -> set[str]:
    metadata = cell.get("metadata")
    tags = metadata.get("tags") if isinstance(metadata, dict) else None
    return {t for t in tags if isinstance(t, str)} if isinstance(tags, list) else set()


def answer_code(notebook: dict) -> dict[str, str]:
    """{question: its answer code} of a notebook: each code answer cell (otter's tags) belongs
    to the question of the next ``grader.check("...")`` cell; several cells are joined."""
    answers: dict[str, list[str]] = {}
    waiting: list[str] = []
    cells = notebook.get("cells") if isinstance(notebook, dict) else None
    for cell in cells if isinstance(cells, list) else []:
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        source = cell_source(cell)
        if ANSWER_TAGS & _tags(cell):
            waiting.append(source)
        elif waiting and CHECK.search(source):
            answers.setdefault(CHECK.search(source).group(1), []).extend(waiting)
            waiting = []
    return {q: "\n\n".join(parts) for q, parts in answers.items()}


def _drop_strings(body: list[ast.stmt]) -> list[ast.stmt]:
    kept = [n for n in body if not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant)
                                    and isinstance(n.value.value, str))]
    return kept or [ast.Pass()]


def normalise(code: str) -> str:
    """The code without comments, docstrings or bare strings, laid out by ``ast.unparse``
    (``#|`` directives and IPython lines go too); the text itself where it does not parse."""
    lines = [ln for ln in code.splitlines() if not ln.lstrip().startswith(("#|", "%", "!"))]
    try:
        tree = ast.parse("\n".join(lines))
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return "\n".join(lines)
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            node.body = _drop_strings(node.body)
    try:
        return ast.unparse(tree)
    except (ValueError, RecursionError):
        return "\n".join(lines)


def fingerprint(code: str, boilerplate: object = None) -> object:
    """copydetect's fingerprint of the normalised ``code`` (``boilerplate``: hashes to drop)."""
    from copydetect import CodeFingerprint

    return CodeFingerprint("answer.py", K_GRAM, 1, boilerplate=boilerplate, language="python",
                           fp=io.StringIO(normalise(code)))


def _share(a: object, b: object) -> tuple[float, float]:
    from copydetect import compare_files

    _, shares, _ = compare_files(a, b)
    return float(shares[0]), float(shares[1])


def similar_pairs(answers: dict[str, dict[str, str]], stubs: dict[str, str],
                  solutions: dict[str, str], threshold: float = THRESHOLD
                  ) -> tuple[list[Pair], dict[str, list[str]]]:
    """(pairs at or above ``threshold``, ranked; {question: students whose answer is
    near-identical to the master's solution}). ``answers``: {student: {question: code}}."""
    pairs: list[Pair] = []
    like_master: dict[str, list[str]] = {}
    for question in sorted(set(stubs) | {q for a in answers.values() for q in a}):
        stub = stubs.get(question, "")
        plate = np.array(sorted(fingerprint(stub).hashes)) if stub.strip() else None
        solution = fingerprint(solutions[question], plate) if question in solutions else None
        bare_stub = normalise(stub)
        groups: dict[str, list[str]] = {}  # the same normalised tokens: compared once
        prints = {}
        for student in sorted(answers):
            code = answers[student].get(question, "")
            if not code.strip() or len(code) > MAX_ANSWER_CHARS or normalise(code) == bare_stub:
                continue  # unanswered (the stub, or nothing), or too long to compare
            try:
                mark = fingerprint(code, plate)
            except Exception:  # noqa: BLE001  (a crafted answer is left out, never the report)
                continue
            if not mark.hashes:
                continue
            if mark.filtered_code in groups:
                groups[mark.filtered_code].append(student)
                continue
            if solution is not None and solution.hashes and min(_share(mark, solution)) >= \
                    threshold:
                like_master.setdefault(question, []).append(student)
                continue
            groups[mark.filtered_code] = [student]
            prints[mark.filtered_code] = mark
        keys = list(groups)
        for i, first in enumerate(keys):
            same = groups[first]
            pairs += [Pair(question, a, b, 1.0, (1.0, 1.0))
                      for j, a in enumerate(same) for b in same[j + 1:]]
            for second in keys[i + 1:]:
                if not prints[first].hashes & prints[second].hashes:
                    continue  # no shared fingerprint: not similar (and cheap to tell)
                shares = _share(prints[first], prints[second])
                if min(shares) >= threshold:
                    pairs += [Pair(question, a, b, round(min(shares), 4), shares) if a < b
                              else Pair(question, b, a, round(min(shares), 4), shares[::-1])
                              for a in same for b in groups[second]]
    pairs.sort(key=lambda p: (-p.similarity, p.question, p.first, p.second))
    return pairs, like_master
