"""Tests for the notebook runner (course_utils.instructor.run_notebooks), on tiny fixture notebooks.

tests/fixtures/notebooks/: 01_passes (a figure and two checks), 02_fails (raises in cell 3 on
purpose), 03_device (records a device), 04_sleeps (hangs in cell 2), 05_figure_link (markdown
links a figure and a picture, and holds a formula). One graded run of 01-03 (about 10 s, one
kernel each) and one of 04-05 with a 3 s cell timeout back the end-to-end tests; everything else
runs without a kernel.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import math
import os
import shutil
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace

import nbformat
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from papermill.cli import _resolve_type  # private, but it *is* papermill's -p behaviour

from course_utils.checks import check_claim, save_run_meta
from course_utils.instructor import run_notebooks as rn
from course_utils.instructor.html_export import MARKDOWN_IMAGE, MATHJAX_URL, local_image
from course_utils.instructor.notebook_execution import (
    DEFAULT_CELL_TIMEOUT,
    NotebookResult,
    failing_cell,
    kernel_environment,
    read_results,
    remove_stale,
)
from course_utils.instructor.notebook_parameters import (
    RunnerError,
    declared_parameters,
    find_notebooks,
    parse_parameters,
)
from course_utils.instructor.parameter_listing import format_parameters_markdown
from course_utils.instructor.run_parameters import (
    check_known,
    collect_params,
    params_for,
    parse_value,
)
from course_utils.instructor.run_summary import write_summary
from course_utils.paths import KEEP_CHECKPOINTS_ENV, NOTEBOOKS_DIR, PROJECT_ROOT, RUN_DIR_ENV

FIXTURES = Path(__file__).parent / "fixtures" / "notebooks"
README = PROJECT_ROOT / "README.md"
START, END = "<!-- parameters:start -->", "<!-- parameters:end -->"


def run_main(argv: list[str]) -> SimpleNamespace:
    """Call the runner's main() in-process, capturing what it prints."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = rn.main(argv)
    return SimpleNamespace(status=status, stdout=out.getvalue(), stderr=err.getvalue())


def copy_fixtures(root: Path) -> Path:
    """A private copy of the fixture notebooks, so a runner bug cannot touch the repo's."""
    folder = root / "notebooks"
    shutil.copytree(FIXTURES, folder)
    return folder


# ---- parameters ---------------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("3", 3), ("-1", -1), ("2.5", 2.5), ("1e-3", 0.001), ("True", True), ("False", False),
    ("None", None), ("true", "true"), ("cuda", "cuda"), ("", ""), ("data/my set", "data/my set"),
])
def test_parse_value_examples(text: str, expected: object) -> None:
    value = parse_value(text)
    assert value == expected and type(value) is type(expected)


@settings(deadline=None)  # a shared 2-core machine: timing is not what this tests
@given(st.text(max_size=12))
def test_parse_value_agrees_with_papermill_cli(text: str) -> None:
    ours, theirs = parse_value(text), _resolve_type(text)
    assert type(ours) is type(theirs)
    assert ours == theirs or (isinstance(ours, float) and math.isnan(ours) and math.isnan(theirs))


def test_collect_params_yaml_then_pairs_later_wins(tmp_path: Path) -> None:
    params_file = tmp_path / "grading.yaml"
    params_file.write_text("epochs: 2\ndata_dir: my_data\nsizes: [1, 2]\n")
    params = collect_params(params_file, [("epochs", "5"), ("fast", "True")])
    assert params == {"epochs": 5, "data_dir": "my_data", "sizes": [1, 2], "fast": True}


@pytest.mark.parametrize("content, message", [
    ("- 1\n- 2\n", "must be a YAML mapping"),
    ("epochs: [1, 2\n", "could not parse"),
    ("1st: 3\n", "not a Python variable name"),
    ("start: 2024-01-01\n", "'start' .* as a date; quote it"),
])
def test_bad_params_file_names_the_file(tmp_path: Path, content: str, message: str) -> None:
    params_file = tmp_path / "grading.yaml"
    params_file.write_text(content)
    with pytest.raises(RunnerError, match=message) as info:
        collect_params(params_file)
    assert "grading.yaml" in str(info.value)


def test_missing_params_file_and_bad_pair_name(tmp_path: Path) -> None:
    with pytest.raises(RunnerError, match="nope.yaml' not found"):
        collect_params(tmp_path / "nope.yaml")
    with pytest.raises(RunnerError, match="'my-param' given with -p"):
        collect_params(None, [("my-param", "1")])


def test_parse_parameters_reads_types_defaults_and_help() -> None:
    source = (
        "import math  # not a parameter\n"
        'preset = None  # None = quick, "report" = full\n'
        "lr: float = 0.1\n"
        "sizes = [\n    1,\n    2,\n]  # one per layer\n"
        "epochs = 3\n"
        "scale = math.pi  # an expression\n"
    )
    found = parse_parameters(source)
    assert [(p.name, p.type, p.default, p.help) for p in found] == [
        ("preset", "None", "None", 'None = quick, "report" = full'),
        ("lr", "float", "0.1", ""),
        ("sizes", "list", "[\n    1,\n    2,\n]", "one per layer"),
        ("epochs", "int", "3", ""),
        ("scale", "expression", "math.pi", "an expression"),
    ]


def test_parameters_cell_with_magic_is_a_clear_error() -> None:
    with pytest.raises(RunnerError, match="03_x.ipynb: the cell tagged 'parameters'"):
        parse_parameters("%matplotlib inline\nepochs = 3\n", "03_x.ipynb")


def test_params_for_passes_only_declared_names() -> None:
    declared = parse_parameters("scale = 1\nlabel = 'x'\n")
    assert params_for({"scale": 3, "fail": True}, declared) == {"scale": 3}


def test_unknown_parameter_is_an_error_before_anything_runs(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    result = run_main(["--notebooks-dir", str(FIXTURES), "--runs-dir", str(runs),
                       "-p", "scal", "3", "-p", "scale", "2"])
    assert result.status == 2
    assert "unknown parameter 'scal'" in result.stderr
    assert "did you mean 'scale'?" in result.stderr
    assert "known parameters: fail, label, preset, scale" in result.stderr
    assert result.stdout == "" and not runs.exists()


def test_parameter_of_an_unselected_notebook_is_not_unknown() -> None:
    declared = declared_parameters(find_notebooks(FIXTURES))
    check_known({"fail": True}, declared)  # 02 declares it: fine even if only 01 runs
    with pytest.raises(RunnerError, match="'epoch'"):
        check_known({"epoch": 1}, declared)


# ---- choosing notebooks and where they go --------------------------------------------------------

@pytest.mark.parametrize("patterns, expected", [
    ([], ["01_passes", "02_fails", "03_device", "04_sleeps", "05_figure_link"]),
    (["02"], ["02_fails"]),
    (["03_device.ipynb", "01"], ["01_passes", "03_device"]),
    (["0[23]_*"], ["02_fails", "03_device"]),
    (["*fail*"], ["02_fails"]),
    (["notebooks/02_fails.ipynb"], ["02_fails"]),
])
def test_find_notebooks_by_prefix_name_or_glob(patterns: list[str], expected: list[str]) -> None:
    assert [nb.stem for nb in find_notebooks(FIXTURES, patterns)] == expected


def test_find_notebooks_unmatched_pattern_lists_the_notebooks() -> None:
    with pytest.raises(RunnerError, match="'09' matches no notebook .*01_passes, 02_fails"):
        find_notebooks(FIXTURES, ["09"])


@pytest.mark.parametrize("name", ["", "..", "a/b", "../x"])
def test_run_name_must_be_a_plain_folder_name(name: str) -> None:
    with pytest.raises(RunnerError, match="--name"):
        rn.check_run_name(name)


def test_run_folder_over_the_sources_is_refused(tmp_path: Path) -> None:
    notebooks = copy_fixtures(tmp_path)
    before = {p.name: p.read_bytes() for p in notebooks.iterdir()}
    result = run_main(["--notebooks-dir", str(notebooks), "--runs-dir", str(tmp_path),
                       "--name", "notebooks"])
    assert result.status == 2 and "would overwrite the sources" in result.stderr
    assert {p.name: p.read_bytes() for p in notebooks.iterdir()} == before


def test_remove_stale_deletes_only_that_notebooks_files(tmp_path: Path) -> None:
    mine = [tmp_path / "02_x.html", tmp_path / "results" / "02_x.checks.json",
            tmp_path / "results" / "02_x.result.json", tmp_path / "checkpoints" / "02_x.pt"]
    other = tmp_path / "results" / "03_y.checks.json"
    for path in [*mine, other]:
        path.parent.mkdir(exist_ok=True)
        path.write_text("{}")
    remove_stale(tmp_path, "02_x")
    assert not any(p.exists() for p in mine) and other.exists()


def test_kernel_environment_is_restored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(RUN_DIR_ENV, raising=False)
    path_before = os.environ["PATH"]
    with kernel_environment(tmp_path / "run"):
        assert os.environ[RUN_DIR_ENV] == str((tmp_path / "run").resolve())
        assert os.environ["PATH"].startswith(os.path.dirname(sys.executable) + os.pathsep)
    assert RUN_DIR_ENV not in os.environ and os.environ["PATH"] == path_before


def test_save_run_meta_writes_only_in_a_graded_run(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(RUN_DIR_ENV, raising=False)
    assert save_run_meta("05_x", device="cuda") is None
    monkeypatch.setenv(RUN_DIR_ENV, str(tmp_path))
    path = save_run_meta("05_x", device="cuda", gpu="H100")
    assert json.loads(path.read_text()) == {"notebook": "05_x", "device": "cuda", "gpu": "H100"}
    assert read_results(tmp_path / "results", "05_x") == ([], "cuda")
    assert read_results(tmp_path / "results", "06_none") == ([], "-")


def executed_copy(path: Path, started: int, injected_at: int | None) -> Path:
    """A fake executed notebook: 5 code cells, cells 0..started-1 have a papermill start time."""
    cells = [nbformat.v4.new_code_cell(f"x = {i}") for i in range(5)]
    for i, cell in enumerate(cells):
        cell.execution_count = i + 1 if i < started else None
        cell.metadata["papermill"] = {"start_time": "2024-01-01" if i < started else None}
    if injected_at is not None:
        cells[injected_at].metadata["tags"] = ["injected-parameters"]
    nbformat.write(nbformat.v4.new_notebook(cells=cells), path)
    return path


def test_failing_cell_maps_papermills_index_to_the_source(tmp_path: Path) -> None:
    error = SimpleNamespace(cell_index=3, exec_count=4)  # what PapermillExecutionError carries
    with_injection = executed_copy(tmp_path / "a.ipynb", started=4, injected_at=2)
    assert failing_cell(error, with_injection) == (2, 4)
    assert failing_cell(error, executed_copy(tmp_path / "b.ipynb", 4, None)) == (3, 4)


def test_failing_cell_blames_the_last_started_cell_when_the_kernel_died(tmp_path: Path) -> None:
    died = RuntimeError("Kernel died")  # no cell_index: DeadKernelError, timeouts
    assert failing_cell(died, executed_copy(tmp_path / "a.ipynb", 3, None)) == (2, 3)
    assert failing_cell(died, executed_copy(tmp_path / "b.ipynb", 0, None)) == (None, None)
    assert failing_cell(died, tmp_path / "never_written.ipynb") == (None, None)
    result = NotebookResult("x", "failed", 1.0, error="DeadKernelError: Kernel died")
    assert result.failure == "DeadKernelError: Kernel died"


def test_broken_results_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "04_x.checks.json").write_text('{"checks": [')
    with pytest.raises(ValueError, match="04_x.checks.json is not valid JSON"):
        read_results(tmp_path, "04_x")


# ---- summary from the JSON rows ---------------------------------------------------------------

def test_summary_md_and_csv_from_rows(tmp_path: Path) -> None:
    ok_rows = [check_claim("a claim", "Part Two", 1, 1, True),
               check_claim("a wrong claim", "Part Two", 2, 3, False, why="typo in the report"),
               check_claim("a built claim", "Part One", 4, 4, True, by_construction="drawn so")]
    results = [
        NotebookResult("01_a", "ok", 1.234, device="cuda", parameters={"epochs": 2},
                          checks=ok_rows),
        NotebookResult("02_b", "failed", 0.5, cell=4, execution_count=5,
                          error="ValueError: bad | input"),
    ]
    write_summary(results, tmp_path / "graded", {"epochs": 2})
    frame = pd.read_csv(tmp_path / "graded" / "summary.csv", keep_default_na=False, dtype=str)
    assert frame.to_dict("records") == [
        {"notebook": "01_a", "status": "ok", "seconds": "1.2", "device": "cuda",
         "failed cell": "", "error": "", "quantity": "a claim", "source": "Part Two",
         "report": "1", "computed": "1", "match": "yes", "why not": ""},
        {"notebook": "01_a", "status": "ok", "seconds": "1.2", "device": "cuda",
         "failed cell": "", "error": "", "quantity": "a wrong claim", "source": "Part Two",
         "report": "2", "computed": "3", "match": "no", "why not": "typo in the report"},
        {"notebook": "01_a", "status": "ok", "seconds": "1.2", "device": "cuda",
         "failed cell": "", "error": "", "quantity": "a built claim", "source": "Part One",
         "report": "4", "computed": "4", "match": "by construction",
         "why not": "drawn so"},  # the notebook's own table shows the same row
        {"notebook": "02_b", "status": "failed", "seconds": "0.5", "device": "-",
         "failed cell": "4", "error": "ValueError: bad | input", "quantity": "",
         "source": "", "report": "", "computed": "", "match": "", "why not": ""},
    ]
    md = (tmp_path / "graded" / "summary.md").read_text()
    assert md.startswith("# Run `graded`\n\nParameters: `epochs=2`\n")
    assert ("2 notebooks: 1 ok, 1 failed. 3 checks: 1 match, 1 by construction, 1 differ "
            "(0 unexplained).") in md
    assert "| 01_a | by construction | a built claim | drawn so | 4 | 4 | Part One |" in md
    assert "| 01_a | ok | 1.2 | cuda | epochs=2 |  |" in md
    assert "| 02_b | failed | 0.5 | - |  | cell 4 (In [5]): ValueError: bad \\| input |" in md
    assert "| 01_a | no | a wrong claim | typo in the report | 2 | 3 | Part Two |" in md


# ---- --list-parameters ---------------------------------------------------------------------

def test_list_parameters_plain() -> None:
    result = run_main(["--notebooks-dir", str(FIXTURES), "--list-parameters"])
    assert result.status == 0
    assert result.stdout == (
        "01_passes.ipynb\n"
        "  scale: int = 2  # classes = 3 * scale\n"
        '  preset: None = None  # None = quick, "report" = full\n'
        "02_fails.ipynb\n"
        "  fail: bool = True  # raise in cell 3\n"
        "03_device.ipynb\n"
        "  scale: int = 1\n"
        "  label: str = 'tiny'  # not passed by the tests\n"
        "04_sleeps.ipynb\n"
        "  seconds: int = 600  # how long cell 2 sleeps\n"
        "05_figure_link.ipynb\n"
        "  (no cell tagged 'parameters')\n"
    )


def test_list_parameters_markdown_through_python_m() -> None:
    # the real entry point, as `make`/instructors call it
    completed = subprocess.run(
        [sys.executable, "-m", "course_utils.instructor.run_notebooks",
         "--notebooks-dir", str(FIXTURES), "--notebooks", "02", "--list-parameters", "--markdown"],
        capture_output=True, text=True, check=False, cwd=PROJECT_ROOT)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout == (
        "| notebook | parameter | type | default | meaning |\n"
        "|---|---|---|---|---|\n"
        "| 02_fails | `fail` | bool | `True` | raise in cell 3 |\n"
    )


def test_markdown_alone_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as info, contextlib.redirect_stderr(io.StringIO()) as err:
        rn.main(["--notebooks-dir", str(FIXTURES), "--runs-dir", str(tmp_path), "--markdown"])
    assert info.value.code == 2 and "--markdown only goes with" in err.getvalue()
    assert not list(tmp_path.iterdir())


def test_readme_parameter_section_matches_the_notebooks() -> None:
    expected = format_parameters_markdown(declared_parameters(find_notebooks(
        NOTEBOOKS_DIR)))
    text = README.read_text(encoding="utf-8")
    fix = ("regenerate it with `python -m course_utils.instructor.run_notebooks --list-parameters "
           f"--markdown` and paste it between the lines {START} and {END} in README.md:\n"
           + expected)
    assert START in text and END in text, "README.md has no parameter section; " + fix
    block = text.split(START, 1)[1].split(END, 1)[0]
    assert block.strip() == expected.strip(), "README.md's parameter section is stale; " + fix


# ---- one real run of the fixtures -------------------------------------------------------------

@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """Run the three fixtures once: YAML says scale 2 and fail true, -p overrides scale to 3."""
    root = tmp_path_factory.mktemp("runner")
    notebooks = copy_fixtures(root)
    sources = {p.name: p.read_bytes() for p in notebooks.iterdir()}
    params_file = root / "grading.yaml"
    params_file.write_text("scale: 2\nfail: true\n")
    project_figure = PROJECT_ROOT / "figures" / "fixture_line.png"
    assert not project_figure.exists()
    env_before = os.environ.get(RUN_DIR_ENV)
    result = run_main(["--notebooks-dir", str(notebooks), "--runs-dir", str(root / "runs"),
                       "--params", str(params_file), "-p", "scale", "3", "--name", "graded",
                       "--notebooks", "01", "02", "03"])
    return SimpleNamespace(result=result, run=root / "runs" / "graded", notebooks=notebooks,
                           sources=sources, project_figure=project_figure,
                           env_before=env_before)


def test_run_prints_one_line_per_notebook_and_fails(graded: SimpleNamespace) -> None:
    lines = graded.result.stdout.splitlines()
    assert graded.result.status == 1
    assert lines[0].startswith("Running 3 notebooks into ")
    assert [line.split()[0] for line in lines[1:4]] == ["01_passes", "02_fails", "03_device"]
    assert lines[1].endswith(" s  ok") and lines[3].endswith(" s  ok")
    # source cell 3; In [4] because papermill's injected cell ran before it
    assert lines[2].endswith("FAILED: cell 3 (In [4]): ValueError: failing on purpose")
    assert "FAILED: 02_fails: cell 3 (In [4]): ValueError: failing on purpose" \
        in graded.result.stderr


def test_failure_does_not_stop_the_others(graded: SimpleNamespace) -> None:
    results = graded.run / "results"
    run_02 = json.loads((results / "02_fails.run.json").read_text())
    assert (run_02["status"], run_02["cell"], run_02["error"]) == \
        ("failed", 3, "ValueError: failing on purpose")
    assert not (results / "02_fails.checks.json").exists()  # never reached show_checks
    assert json.loads((results / "03_device.run.json").read_text())["status"] == "ok"
    assert (results / "03_device.checks.json").is_file()


def injected(executed: Path) -> str:
    cells = nbformat.read(executed, as_version=4).cells
    sources = [c.source for c in cells if "injected-parameters" in c.metadata.get("tags", [])]
    return "\n".join(sources)


def test_parameters_go_only_to_notebooks_that_declare_them(graded: SimpleNamespace) -> None:
    assert "scale = 3" in injected(graded.run / "01_passes.ipynb")  # -p beat the YAML's 2
    assert "fail" not in injected(graded.run / "01_passes.ipynb")
    assert "fail = True" in injected(graded.run / "02_fails.ipynb")
    assert "scale" not in injected(graded.run / "02_fails.ipynb")
    checks = json.loads((graded.run / "results" / "01_passes.checks.json").read_text())
    assert checks["checks"][0]["computed"] == "9"  # 3 * scale, computed in the kernel


def test_summary_of_the_run(graded: SimpleNamespace) -> None:
    frame = pd.read_csv(graded.run / "summary.csv", keep_default_na=False, dtype=str)
    assert list(frame["notebook"]) == ["01_passes", "01_passes", "02_fails", "03_device"]
    assert list(frame["status"]) == ["ok", "ok", "failed", "ok"]
    assert list(frame["device"]) == ["-", "-", "-", "cpu-fixture"]
    assert list(frame["quantity"]) == ["num_classes", "scale is positive", "", "epochs"]
    assert list(frame["match"]) == ["no", "yes", "", "no"]
    assert frame.loc[2, "failed cell"] == "3"
    assert frame.loc[3, "why not"] == "fixture: epochs = 10 * scale"
    md = (graded.run / "summary.md").read_text()
    assert "Parameters: `scale=3`, `fail=True`" in md
    assert ("3 notebooks: 2 ok, 1 failed. 3 checks: 1 match, 0 by construction, 2 differ "
            "(1 unexplained).") in md


def test_html_exported_for_every_notebook(graded: SimpleNamespace) -> None:
    for stem in ["01_passes", "02_fails", "03_device"]:
        assert (graded.run / f"{stem}.html").read_text().lstrip().startswith("<!DOCTYPE html>")
    assert "failing on purpose" in (graded.run / "02_fails.html").read_text()


def test_sources_untouched_and_figures_in_the_run(graded: SimpleNamespace) -> None:
    assert {p.name: p.read_bytes() for p in graded.notebooks.iterdir()} == graded.sources
    assert (graded.run / "figures" / "fixture_line.png").read_bytes()[:4] == b"\x89PNG"
    assert not graded.project_figure.exists()  # COURSE_FIGURES_DIR reached the kernel
    assert os.environ.get(RUN_DIR_ENV) == graded.env_before


def test_no_html_and_stale_files_removed(graded: SimpleNamespace, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    shutil.copytree(graded.run, runs / "again")  # a previous run with the same name
    result = run_main(["--notebooks-dir", str(graded.notebooks), "--runs-dir", str(runs),
                       "--name", "again", "--notebooks", "02", "--no-html"])
    assert result.status == 1
    assert not (runs / "again" / "02_fails.html").exists()
    assert (runs / "again" / "01_passes.html").exists()  # not part of this run: left alone
    assert list(pd.read_csv(runs / "again" / "summary.csv")["notebook"]) == ["02_fails"]


# ---- bounded in time, readable anywhere: one run of 04 (hangs) and 05 (figures, formula) ------

@pytest.mark.parametrize("text, expected", [("30", 30), ("0", None), ("none", None),
                                            ("None", None)])
def test_cell_timeout_option(text: str, expected: int | None) -> None:
    assert rn.build_parser().parse_args(["--cell-timeout", text]).cell_timeout == expected
    assert rn.build_parser().parse_args([]).cell_timeout == DEFAULT_CELL_TIMEOUT


@pytest.mark.parametrize("text", ["-5", "2.5", "soon"])
def test_bad_cell_timeout_is_a_usage_error(text: str) -> None:
    with pytest.raises(SystemExit) as info, contextlib.redirect_stderr(io.StringIO()) as err:
        rn.build_parser().parse_args(["--cell-timeout", text])
    assert info.value.code == 2 and "not a number of seconds" in err.getvalue()


def test_keep_checkpoints_env_only_with_the_flag(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """main() hands the flag to the kernels' environment; without it the variable is unset."""
    seen = []

    def fake_run_notebook(source, run_folder, params, html, cell_timeout):
        seen.append((os.environ.get(KEEP_CHECKPOINTS_ENV), cell_timeout))
        return NotebookResult(source.stem, "ok", 0.0)

    monkeypatch.setattr(rn, "run_notebook", fake_run_notebook)
    monkeypatch.setenv(KEEP_CHECKPOINTS_ENV, "1")  # left over in the shell: must not count
    base = ["--notebooks-dir", str(FIXTURES), "--runs-dir", str(tmp_path), "--notebooks", "01",
            "--no-html"]
    assert run_main(base).status == 0
    assert run_main([*base, "--keep-checkpoints", "--cell-timeout", "none"]).status == 0
    assert seen == [(None, DEFAULT_CELL_TIMEOUT), ("1", None)]
    assert os.environ[KEEP_CHECKPOINTS_ENV] == "1"  # the shell's value is restored


def test_local_image_prefers_the_runs_own_figure(tmp_path: Path) -> None:
    notebooks, run_figures = tmp_path / "notebooks", tmp_path / "run" / "figures"
    for path in [tmp_path / "figures" / "a.png", run_figures / "a.png", tmp_path / "b.png",
                 notebooks / "c.png"]:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"png")
    assert local_image("../figures/a.png", notebooks, run_figures) == run_figures / "a.png"
    assert local_image("../b.png", notebooks, run_figures) == (tmp_path / "b.png").resolve()
    assert local_image("c%2Epng", notebooks, run_figures) == (notebooks / "c.png").resolve()
    for src in ["https://example.org/a.png", "data:image/png;base64,AA==", "attachment:a.png",
                str(notebooks / "c.png"), "missing.png", "../figures/a.svg"]:
        assert local_image(src, notebooks, run_figures) is None, src


@pytest.fixture(scope="module")
def bounded(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """04 hangs in cell 2 under a 3 s cell timeout; 05 runs after it. The run folder is then
    moved away from the notebooks and the project, as a grader would copy it."""
    root = tmp_path_factory.mktemp("bounded")
    notebooks = copy_fixtures(root)
    started = time.perf_counter()
    result = run_main(["--notebooks-dir", str(notebooks), "--runs-dir", str(root / "runs"),
                       "--name", "bounded", "--notebooks", "04", "05", "--cell-timeout", "3"])
    seconds = time.perf_counter() - started
    moved = tmp_path_factory.mktemp("moved") / "bounded"
    shutil.move(root / "runs" / "bounded", moved)
    shutil.rmtree(notebooks)  # nothing may still point at the sources
    return SimpleNamespace(result=result, run=moved, seconds=seconds)


def test_hung_cell_times_out_and_the_next_notebook_runs(bounded: SimpleNamespace) -> None:
    lines = bounded.result.stdout.splitlines()
    assert bounded.result.status == 1 and bounded.seconds < 120  # not the 600 s of the sleep
    # the cell to blame is the one that started last (no parameters given: no injected cell)
    assert lines[1].startswith("04_sleeps")
    assert lines[1].endswith("FAILED: cell 2 (In [2]): timed out after 3 s")
    assert lines[2].startswith("05_figure_link") and lines[2].endswith(" s  ok")
    run_04 = json.loads((bounded.run / "results" / "04_sleeps.run.json").read_text())
    assert (run_04["status"], run_04["cell"], run_04["error"]) == \
        ("failed", 2, "timed out after 3 s")
    assert "| 04_sleeps | failed |" in (bounded.run / "summary.md").read_text()
    assert "cell 2 (In [2]): timed out after 3 s" in (bounded.run / "summary.md").read_text()


class _Tags(HTMLParser):
    """The src of every <img> and <script> of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.scripts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        src = dict(attrs).get("src")
        if tag == "img":
            self.images.append(src or "")
        elif tag == "script" and src is not None:
            self.scripts.append(src)


def page_tags(html: Path) -> _Tags:
    tags = _Tags()
    tags.feed(html.read_text(encoding="utf-8"))
    return tags


def test_markdown_images_are_embedded(bounded: SimpleNamespace) -> None:
    images = page_tags(bounded.run / "05_figure_link.html").images
    assert len(images) == 2
    for src in images:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:4] == b"\x89PNG"
    cells = nbformat.read(bounded.run / "05_figure_link.ipynb", as_version=4).cells
    links = [m["src"] for c in cells if c.cell_type == "markdown"
             for m in MARKDOWN_IMAGE.finditer(c.source)]
    assert links == ["attachment:fixture_link.png", "attachment:05_picture.png"]
    attached = {name: base64.b64decode(bundle["image/png"])
                for c in cells for name, bundle in c.get("attachments", {}).items()}
    assert attached["fixture_link.png"] == (bounded.run / "figures" / "fixture_link.png"
                                            ).read_bytes()  # this run's figure
    assert attached["05_picture.png"] == (FIXTURES / "05_picture.png").read_bytes()


def test_html_loads_mathjax_from_the_run_folder(bounded: SimpleNamespace) -> None:
    for page in ["04_sleeps.html", "05_figure_link.html"]:
        scripts = page_tags(bounded.run / page).scripts
        assert not [s for s in scripts if s.startswith(("http:", "https:", "//"))], scripts
        mathjax = [s for s in scripts if "MathJax.js" in s]
        assert mathjax == [MATHJAX_URL]
    path, query = MATHJAX_URL.split("?")
    assert (bounded.run / path).is_file()
    for name in query.removeprefix("config=").split(","):
        assert (bounded.run / "mathjax" / "config" / f"{name}.js").is_file(), name
    size = sum(p.stat().st_size for p in (bounded.run / "mathjax").rglob("*") if p.is_file())
    assert size < 4_000_000
    assert r"\frac{\partial L}{\partial x}" in (bounded.run / "05_figure_link.html").read_text()
