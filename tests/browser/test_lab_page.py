"""How page contents turn into problems: no browser needed for these."""

from __future__ import annotations

from lab_page import CellReport, notebook_path, problems


def cell(index: int, prompt: str, source: str = "x = 1", *stderr: str) -> CellReport:
    return CellReport(index=index, prompt=prompt, source=source, stderr=tuple(stderr))


def test_a_clean_run_has_no_problems() -> None:
    cells = [cell(0, "[1]:"), cell(1, "[2]:", "")]
    assert problems(cells) == []


def test_empty_cells_need_not_run() -> None:
    # JupyterLab never executes an empty cell, so its prompt stays "[ ]:".
    assert problems([cell(0, "[ ]:", "  \n")]) == []


def test_unrun_and_running_cells_are_problems() -> None:
    found = problems([cell(0, "[ ]:", "import torch"), cell(1, "[*]:", "train()")])
    assert found == ["code cell 1 ('import torch') did not run (prompt '[ ]:')",
                     "code cell 2 ('train()') did not run (prompt '[*]:')"]


def test_a_syntax_error_without_traceback_is_an_error() -> None:
    # IPython prints SyntaxErrors without the word "Traceback".
    text = '  Cell In[3], line 1\n    x = (\n        ^\nSyntaxError: incomplete input'
    found = problems([cell(0, "[3]:", "x = (", text)])
    assert found == ["code cell 1 ('x = (') shows an error: 'SyntaxError: incomplete input'"]


def test_a_warning_is_a_problem_named_by_its_line() -> None:
    text = "/tmp/a.py:3: UserWarning: careful\n  warnings.warn('careful')"
    found = problems([cell(0, "[1]:", "f()", text)])
    assert found == ["code cell 1 ('f()') shows a warning: '/tmp/a.py:3: UserWarning: careful'"]


def test_progress_bars_and_other_stderr_text_are_not_problems() -> None:
    # tqdm writes its bar to stderr; with leave=False the final text is blank.
    bar = "epoch 1/3: 100%|██████████| 3/3 [00:24<00:00,  8.23s/it]"
    assert problems([cell(0, "[1]:", "fit()", bar, "   ", "loading 3 files")]) == []


def test_each_notebook_gets_its_own_workspace() -> None:
    assert notebook_path("05_chain_rule.ipynb") == (
        "lab/workspaces/05_chain_rule-ipynb/tree/05_chain_rule.ipynb")
