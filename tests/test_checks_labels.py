"""One label rule for every notebook: "match" only for what was computed independently, "by
construction" for anything built from the report's own number (course_utils/checks.py).

Three layers, each able to fail:
- the mechanism: ``check_value`` labels a key of ``BUILT_FROM_REPORT`` (and a computed value
  that is the report's own object) "by construction" even when the caller forgets;
- the sources: no notebook passes a value read from ``course_utils.report`` as the computed side
  of a row without ``by_construction=``, or builds a ``Check`` by hand (bypassing the rule);
- the saved rows: every ``results/<notebook>.checks.json`` a graded run wrote passes
  ``Check.label_problem``. Notebooks 01 and 02 are run here (a graded run, about 30 s);
  01, 03 and 04 on made-up datasets are checked by tests/test_notebooks_other_datasets.py and
  05-07 on other parameters by tests/test_notebooks_other_parameters.py.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from course_utils import checks
from course_utils.paths import FIGURES_ENV, NOTEBOOKS_DIR, PROJECT_ROOT, RUN_DIR_ENV
from course_utils.report import value

NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("[0-9][0-9]_*.ipynb"))
ROW_BUILDERS = sorted((PROJECT_ROOT / "course_utils").rglob("*checks*.py"))
#: Where each row function takes its computed side: (positional index, keyword).
COMPUTED_ARGUMENT = {"check_value": (1, "computed"), "check_claim": (3, "computed")}
#: Names through which code reads the report's printed values.
REPORT_READERS = {"value", "REPORT"}
RUN_HERE = ("01_data_exploration", "02_model_and_parameters")


# ---- the mechanism ------------------------------------------------------------------------------

def test_a_key_built_from_the_report_is_never_a_plain_match():
    row = checks.check_value("total_feature_maps", 128 * 3 + 96 * 4)
    assert row.verdict == checks.BY_CONSTRUCTION
    assert row.by_construction == checks.BUILT_FROM_REPORT["total_feature_maps"]
    assert row.label_problem() == ""
    # the caller's own reason wins over the registry's
    own = checks.check_value("loss", "CrossEntropyLoss", by_construction="train.py's choice")
    assert own.by_construction == "train.py's choice"
    # a difference stays a difference
    assert checks.check_value("num_classes", 4, why="4 classes").verdict == checks.DIFFER


def test_independent_keeps_a_plain_match_and_says_why():
    row = checks.check_value("num_classes", 6, independent="a 6-class dataset of its own")
    assert row.verdict == checks.MATCH and row.independent and row.label_problem() == ""
    # a key the project does not build from the report needs no reason
    assert checks.check_value("im2col_example_rows", 9).verdict == checks.MATCH


def test_the_reports_own_value_object_is_by_construction():
    lr = value("lr")  # a float: its identity says where it came from
    assert checks.check_value("lr", lr).verdict == checks.BY_CONSTRUCTION
    table = value("table1")
    claim = checks.check_claim("Table 1", "Part One", table, table, True)
    assert claim.verdict == checks.BY_CONSTRUCTION
    assert checks.check_claim("Table 1", "Part One", table, list(table), True).verdict == \
        checks.MATCH  # a rebuilt copy is the caller's business (its source is checked below)


def test_a_hand_built_plain_match_of_a_report_built_key_is_a_problem():
    forged = checks.Check("total feature maps", "Part One, Question 1", "768", "768", True,
                          key="total_feature_maps")
    assert "total_feature_maps" in forged.label_problem()
    unexplained = checks.Check("q", "s", "1", "1", True, by_construction="because")
    assert "does not say so" in unexplained.label_problem()
    assert checks.label_problems([forged, unexplained]) == [forged.label_problem(),
                                                            unexplained.label_problem()]


def test_label_fields_survive_the_json_round_trip():
    row = checks.check_value("num_classes", 6, independent="its own data")
    assert checks.Check.from_json(json.loads(json.dumps(row.to_json()))) == row


# ---- the sources ---------------------------------------------------------------------------------

def code_of(path: Path) -> str:
    """A notebook's code cells (or a module's text), with IPython magics left out."""
    if path.suffix != ".ipynb":
        return path.read_text(encoding="utf-8")
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    lines = []
    for cell in cells:
        if cell["cell_type"] == "code":
            lines += [line for line in "".join(cell["source"]).splitlines()
                      if not line.lstrip().startswith(("%", "!"))]
            lines.append("")
    return "\n".join(lines)


def reads_report(node: ast.AST) -> bool:
    """True when the expression reads a printed value (value(...), REPORT[...])."""
    for sub in ast.walk(node):
        target = sub.func if isinstance(sub, ast.Call) else (
            sub.value if isinstance(sub, ast.Subscript) else None)
        if isinstance(target, ast.Name) and target.id in REPORT_READERS:
            return True
        if isinstance(target, ast.Attribute) and target.attr in REPORT_READERS:
            return True
    return False


def label_violations(source: str) -> list[str]:
    """Rows in ``source`` that break the rule where it can be seen without running them."""
    problems = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(
            node.func, "id", "")
        keywords = {k.arg: k.value for k in node.keywords}
        if name == "Check":
            problems.append(f"line {node.lineno}: a Check built by hand bypasses the label rule")
        if name not in COMPUTED_ARGUMENT:
            continue
        index, keyword = COMPUTED_ARGUMENT[name]
        computed = node.args[index] if len(node.args) > index else keywords.get(keyword)
        if computed is not None and reads_report(computed) and "by_construction" not in keywords:
            problems.append(f"line {node.lineno}: {name}'s computed side "
                            f"{ast.unparse(computed)!r} reads the report: pass by_construction=")
    return problems


def test_the_source_rule_catches_a_report_value_passed_as_computed():
    assert label_violations('check_value("lr", value("lr"))')
    assert label_violations('check_claim("q", s, r, REPORT["lr"].value * 1, True)')
    assert label_violations('rows.append(Check("q", "s", "1", "1", True))')
    assert not label_violations('check_value("lr", value("lr"), by_construction="as stated")')
    assert not label_violations('check_claim("q", s, value("x"), count, True)')  # report side


@pytest.mark.parametrize("path", [p for p in NOTEBOOKS + ROW_BUILDERS if p.name != "checks.py"],
                         ids=lambda p: str(p.relative_to(PROJECT_ROOT)))
def test_no_row_labels_the_reports_own_value_a_plain_match(path: Path):
    assert label_violations(code_of(path)) == []


# ---- the saved rows ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def graded_results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """results/ of one graded run of notebooks 01 and 02 (papermill, the default parameters)."""
    run = tmp_path_factory.mktemp("labels_run")
    env = {**os.environ, RUN_DIR_ENV: str(run), FIGURES_ENV: str(run / "figures"),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_ROOT),
                                                       os.environ.get("PYTHONPATH")]))}
    for name in RUN_HERE:
        done = subprocess.run(
            [sys.executable, "-m", "papermill", "-k", "python3", "--cwd", str(NOTEBOOKS_DIR),
             str(NOTEBOOKS_DIR / f"{name}.ipynb"), str(run / f"{name}.ipynb")],
            env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
    return run / checks.RESULTS_DIR


@pytest.mark.parametrize("notebook", RUN_HERE)
def test_saved_rows_of_a_graded_run_follow_the_rule(graded_results: Path, notebook: str):
    rows = checks.read_checks(graded_results, notebook)
    assert rows, f"{notebook} saved no checks"
    assert checks.label_problems(rows) == []
