"""No notebook (its markdown, and the strings its code prints), no module of the package and no
README line makes again a sentence that some run breaks (``markdown_claims.CLAIMS``); the runs
that break them are proved in the other-datasets and other-parameters tests."""

from __future__ import annotations

import json

import pytest
from markdown_claims import CLAIMS, made_again, search

from course_utils.paths import NOTEBOOKS_DIR, PROJECT_ROOT


def text_of(where: str) -> str:
    """What a reader of ``where`` sees: a notebook's cells (markdown and code, whose strings
    become printed reasons) with every package module (reasons built there), or the README."""
    if where == "README.md":
        return (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    notebook = json.loads((NOTEBOOKS_DIR / f"{where}.ipynb").read_text(encoding="utf-8"))
    modules = sorted((PROJECT_ROOT / "course_utils").rglob("*.py"))
    return "\n\n".join(["".join(c["source"]) for c in notebook["cells"]]
                       + [m.read_text(encoding="utf-8") for m in modules])


@pytest.mark.parametrize("where", sorted({claim.where for claim in CLAIMS}))
def test_no_notebook_states_a_result_a_run_breaks(where: str):
    found = made_again(where, text_of(where))
    assert found == [], "\n".join(f"{where}: {c.sentence!r} (false for: {c.broken_by})"
                                  for c in found)


@pytest.mark.parametrize("claim", CLAIMS, ids=lambda c: f"{c.where}:{c.pattern[:30]}")
def test_each_pattern_finds_its_sentence(claim):
    """The check can fail: every pattern finds the sentence it stands for, wrapped anywhere."""
    assert search(claim.pattern, claim.sentence), claim.sentence
    wrapped = claim.sentence.replace(" ", "\n", 3)
    assert search(claim.pattern, wrapped), wrapped


def test_a_reintroduced_sentence_fails():
    """Put one old sentence back into 02's markdown: the check names it."""
    claim = next(c for c in CLAIMS if "over 99%" in c.sentence)
    text = text_of(claim.where) + "\n\nFor the record, " + claim.sentence
    assert made_again(claim.where, text) == [claim]
