"""Notebooks 02, 05, 06 and 07 on other parameters: every claim they print holds for the
numbers printed beside it, and each run breaks the sentences ``markdown_claims`` forbids.

Each notebook runs as a graded run does (papermill's command line, ``-p``), on parameters other
than the defaults:
- 02 at ``image_size`` 64 (pool2 upsamples; fc1 does about 5% of the FLOPs, not under 1%);
- 05 with another activation pair and weights (E falls), and with weights whose hidden ReLU dies
  after two steps while E still ends lower (the row "E falls under repeated updates" must say no);
- 06 with ``search_bound`` 1.0 (a few hundred candidates per equation, not thousands) and 0.5
  (too small: the notebook must stop with a ValueError naming the smallest bound that works);
- 07 with other timing sizes, channels and batch.
The tests parse what each run printed and its saved checks (``results/*.checks.json``), and
prove on these runs that the sentences of ``markdown_claims.CLAIMS`` are false for them (so
``test_markdown_claims`` forbids no sentence that is always true). They compare no CPU-kernel
output (``make test-kernels`` skips them). The six runs take about a minute and a half on 2
CPU cores, two at a time.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import pytest
from markdown_claims import candidates, free_pixel_draws, loop_ratios, unproved

from course_utils.checks import label_problems, read_checks
from course_utils.paths import FIGURES_ENV, NOTEBOOKS_DIR, PROJECT_ROOT, RUN_DIR_ENV

RUNS = {
    "02_size_64": ("02_model_and_parameters", ["-p", "image_size", "64"]),
    "05_alive": ("05_chain_rule", ["-p", "f", "sigmoid", "-p", "g", "tanh", "-p", "w1", "-0.5",
                                   "-p", "w2", "0.8", "-p", "w3", "-1.2", "-p", "t", "0.4",
                                   "-p", "lr", "0.5", "-p", "steps", "30"]),
    # relu / sigmoid, lr 5: the hidden unit dies after step 2, E ends lower but stays frozen
    "05_dead": ("05_chain_rule", ["-p", "f", "relu", "-p", "g", "sigmoid", "-p", "t", "0.3",
                                  "-p", "lr", "5.0"]),
    "06_bound_1": ("06_conv_backprop_by_hand", ["-p", "search_bound", "1.0",
                                                "-p", "random_trials", "60", "-p", "seed", "3"]),
    "06_bound_05": ("06_conv_backprop_by_hand", ["-p", "search_bound", "0.5"]),
    "07_sizes": ("07_im2col_and_fold", ["-y", "timing_sizes: [5, 12]", "-p", "channels", "3",
                                        "-p", "batch", "1", "-p", "repeats", "2"]),
}


#: A kernel that dies before it runs any cell (seen once in a CI run, two kernels starting at
#: once; jupyter_client picks ports before the kernel binds them) is started again, once: no
#: cell ran, so only the start is repeated.
KERNEL_START_RACE = "Kernel died before replying to kernel_info"


def run(label: str, root: Path) -> SimpleNamespace:
    """Execute RUNS[label] with papermill into ``root``: the executed notebook, its return code
    and the folder its checks were saved in."""
    notebook, params = RUNS[label]
    folder = root / label
    folder.mkdir(parents=True)
    output = folder / f"{notebook}.ipynb"
    venv_bin = str(Path(sys.executable).parent)  # the kernel finds "python" through PATH
    env = {**os.environ, "PATH": venv_bin + os.pathsep + os.environ.get("PATH", ""),
           FIGURES_ENV: str(folder / "figures"), RUN_DIR_ENV: str(folder / "run"),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_ROOT),
                                                       os.environ.get("PYTHONPATH")]))}
    command = [sys.executable, "-m", "papermill", "-k", "python3",
               str(NOTEBOOKS_DIR / f"{notebook}.ipynb"), str(output), *params,
               "--cwd", str(NOTEBOOKS_DIR), "--no-progress-bar"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    if KERNEL_START_RACE in done.stderr:
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    executed = json.loads(output.read_text(encoding="utf-8"))
    return SimpleNamespace(notebook=notebook, executed=executed, returncode=done.returncode,
                           stderr=done.stderr, results=folder / "run" / "results")


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, SimpleNamespace]:
    root = tmp_path_factory.mktemp("other_parameters")
    with ThreadPoolExecutor(max_workers=2) as pool:  # two kernels at a time: 2 CPU cores
        done = pool.map(lambda label: run(label, root), RUNS)
        return dict(zip(RUNS, done, strict=True))


def printed(executed: dict) -> str:
    """All text every code cell printed or displayed (stdout, stderr, text/plain, errors)."""
    parts = []
    for cell in executed["cells"]:
        for output in cell.get("outputs", []):
            parts.append("".join(output.get("text", "")))
            parts.append("".join(output.get("data", {}).get("text/plain", "")))
            if output.get("output_type") == "error":
                parts.append(f"{output['ename']}: {output['evalue']}")
    return "\n".join(parts)


def markdown(executed: dict) -> str:
    return "\n".join("".join(c["source"]) for c in executed["cells"]
                     if c["cell_type"] == "markdown")


def number(pattern: str, text: str) -> tuple[str, ...]:
    """The groups of the one match of ``pattern`` in ``text`` (fails, showing text, if none)."""
    found = re.search(pattern, text)
    assert found, f"no {pattern!r} in the printed output:\n{text[:3000]}"
    return found.groups()


def rows_of(result: SimpleNamespace) -> dict:
    rows = read_checks(result.results, result.notebook)
    assert rows, f"{result.notebook} saved no checks"
    assert label_problems(rows) == []
    return {row.quantity: row for row in rows}


# ---- the sentences markdown_claims forbids are false for these runs ------------------------------

@pytest.mark.parametrize("label", [label for label in RUNS if label != "06_bound_05"])
def test_each_run_breaks_the_sentences_it_is_named_for(runs: dict, label: str):
    assert runs[label].returncode == 0, runs[label].stderr[-3000:]
    assert unproved(label, printed(runs[label].executed)) == []


# ---- 02: pool2 and the FLOP shares at another input size -------------------------------------

def test_02_prints_what_pool2_does_and_fc1s_share_at_its_size(runs: dict):
    result = runs["02_size_64"]
    assert result.returncode == 0, result.stderr[-3000:]
    text = printed(result.executed)
    side, does = number(r"image_size 64: pool2 gets (\d+)x\d+ maps and ([^\n]+?) to give", text)
    assert int(side) < 54 and does == "repeats values (it upsamples)"
    shares = {int(size): (float(convs), float(fc1), flag == "True") for size, convs, fc1, flag
              in re.findall(r"at (\d+)x\d+: the convs do ([\d.]+)% of the FLOPs, fc1 ([\d.]+)% "
                            r"\(fc1 under 1%: (\w+)\)", text)}
    assert set(shares) == {256, 64}
    for convs, fc1, under in shares.values():
        assert under == (fc1 < 1.0) and convs + fc1 <= 100.0
    assert shares[256][2] and not shares[64][2]  # the old "under 1% of the work" at 256 only
    rows_of(result)  # its saved rows keep the label rule at another size


# ---- 05: the descent claim ---------------------------------------------------------------------

@pytest.mark.parametrize("label", ["05_alive", "05_dead"])
def test_05_descent_row_agrees_with_the_printed_history(runs: dict, label: str):
    result = runs[label]
    assert result.returncode == 0, result.stderr[-3000:]
    text = printed(result.executed)
    start, end, steps = number(r"E: ([\d.]+) at the start -> ([\d.]+) after (\d+) steps", text)
    verdict = number(r"repeated updates: ([^\n]+)", text)[0]
    row = rows_of(result)["E falls under repeated updates"]
    if verdict.startswith("E fell at"):
        improved, total = map(int, number(r"E fell at (\d+) of (\d+) steps", verdict))
        assert total == int(steps) and 2 * improved > total and float(end) < float(start)
        assert row.match and "dead at the last weights" not in text
    else:
        stalled, frozen, total = map(int, number(
            r"stalled after step (\d+).* for the last (\d+) of (\d+) steps", verdict))
        assert stalled + frozen == total == int(steps)
        assert not row.match and row.why == verdict
        assert "dead at the last weights: hidden neuron h" in text
    assert (label == "05_dead") == (not row.match)
    # the 9-pair gradient checks do not depend on the run's activations or weights
    assert all(r.match for q, r in rows_of(result).items() if q.startswith("dE/d"))


def test_05_dead_unit_ends_lower_yet_the_row_says_no(runs: dict):
    text = printed(runs["05_dead"].executed)
    start, end, _ = number(r"E: ([\d.]+) at the start -> ([\d.]+) after (\d+) steps", text)
    assert float(end) < float(start)  # what end < start alone called a "yes"
    assert not rows_of(runs["05_dead"])["E falls under repeated updates"].match


# ---- 06: the search, the pixels, the evidence ---------------------------------------------------

def test_06_counts_printed_for_a_smaller_search(runs: dict):
    result = runs["06_bound_1"]
    assert result.returncode == 0, result.stderr[-3000:]
    text = printed(result.executed)
    counts = candidates(text)
    assert counts, text[:3000]
    low, high = number(r"\(([\d,]+) to ([\d,]+)\)", text)
    assert (int(low.replace(",", "")), int(high.replace(",", ""))) == (min(counts), max(counts))
    assert max(counts) < 1000  # the case the old "thousands" sentence got wrong
    assert number(r"solutions satisfying all 8 equations: (\d+)", text) == ("1",)
    searched, fixed, free = map(int, number(
        r"the 25 image entries: (\d+) searched, (\d+) fixed by the rounded conv output, (\d+) "
        r"not determined", text))
    search_cell = number(r"solutions satisfying all 8 equations: 1\n((?:X\[[^\n]*\n)*)", text)[0]
    assert searched + fixed + free == 25 and searched == len(search_cell.splitlines())
    reproduced, trials = free_pixel_draws(text)
    assert trials == 60 and 0 < reproduced < trials  # the conv output does bound them
    boxed = re.search(r"^conv output as printed\s+(\d+)$", text, re.M)
    assert boxed and int(boxed.group(1)) == reproduced


def test_06_rows_follow_what_the_recovery_read(runs: dict):
    result = runs["06_bound_1"]
    text = printed(result.executed)
    read = re.findall(r"^  (\w+): ", number(r"(prints the recovery read[^\n]*(?:\n  [^\n]*)*)",
                                            text)[0], re.M)
    never = number(r"prints it never read: ([^\n]+)", text)[0].split(", ")
    rows = rows_of(result)
    assert {"conv_output", "sigmoid_delta"} <= set(read)
    for key in read:
        if key in rows and rows[key].match:  # a garbled print still differs, with its reason
            assert rows[key].verdict == "by construction", key
    assert "fc_delta_input" in never and rows["fc_delta_input"].verdict == "match"
    assert not set(read) & set(never)


def test_06_too_small_a_bound_stops_with_the_bound_that_works(runs: dict):
    result = runs["06_bound_05"]
    assert result.returncode != 0
    errors = [o for c in result.executed["cells"] for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert len(errors) == 1 and errors[0]["ename"] == "ValueError", errors
    message = errors[0]["evalue"]
    assert message.startswith("search_bound = 0.5: the pixel search found 0 solutions")
    assert "-p search_bound 0.88" in message and "RuntimeError" not in printed(result.executed)


# ---- 07: the timing claims and the fold cases ----------------------------------------------------

def test_07_rows_agree_with_the_printed_timings_and_fold_cases(runs: dict):
    result = runs["07_sizes"]
    assert result.returncode == 0, result.stderr[-3000:]
    text = printed(result.executed)
    ratios = loop_ratios(text)
    assert len(ratios) == 2  # one row per timing size
    rows = rows_of(result)
    efficiency = rows["efficiency: matrix multiply beats the loops"]
    assert efficiency.match == all(r > 1 for r in ratios)
    assert efficiency.computed.endswith(str(all(r > 1 for r in ratios)))
    overlap = number(r"fold\(unfold\(x\)\) == x \* counts: (\w+)", text)[0]
    tiles = number(r"no overlap \([^)]*\): fold\(unfold\(x\)\) == x: (\w+)", text)[0]
    fold_row = next(r for q, r in rows.items() if q.startswith("fold: the reverse"))
    assert fold_row.match == (overlap == tiles == "True")
