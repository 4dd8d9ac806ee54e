"""End to end: notebooks 03 and 04 run by papermill (as a graded run does) on a dataset holding
a truncated PNG (train) and a truncated JPEG (test) finish, leave both files out, and say so in
one DatasetWarning that names both.

Everything is small (the tiny dataset, 32x32, one epoch, two batch sizes): about 20-30 s per
notebook on 2 CPU cores, mostly the kernel's start and imports.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from course_utils.part_one import cache
from course_utils.paths import FIGURES_ENV, NOTEBOOKS_DIR, RUN_DIR_ENV

IMAGE_SIZE = 32
PARAMETERS = {
    "03_training": ["-p", "epochs", "1", "-p", "batch_size", "32", "-p", "progress", "False",
                    "-y", "compare_lrs: [0.0001]", "-p", "compare_steps", "1"],
    "04_fps_benchmark": ["-p", "batch_sizes", "[2]", "-p", "end_to_end_batch_sizes", "[2, 4]",
                         "-p", "latency_images", "2"],
}
#: What each notebook prints about the data: the broken files are not counted.
EXPECTED_OUTPUT = {
    "03_training": "train: 17 images in 1 batches of 32; test: 12 images",
    "04_fps_benchmark": f"12 test images at {IMAGE_SIZE}x{IMAGE_SIZE}",
}


def run_papermill(notebook: str, root: Path, out_dir: Path) -> dict:
    """Execute ``notebook`` on ``root`` with papermill's command line; the executed notebook."""
    output = out_dir / f"{notebook}.ipynb"
    venv_bin = str(Path(sys.executable).parent)  # the kernel finds "python" through PATH
    env = {**os.environ, "PATH": venv_bin + os.pathsep + os.environ.get("PATH", ""),
           FIGURES_ENV: str(out_dir / "figures"), RUN_DIR_ENV: str(out_dir / "run")}
    command = [sys.executable, "-m", "papermill", "-k", "python3",
               str(NOTEBOOKS_DIR / f"{notebook}.ipynb"), str(output),
               "-p", "data_dir", str(root.resolve()), "-p", "image_size", str(IMAGE_SIZE),
               *PARAMETERS[notebook], "--cwd", str(NOTEBOOKS_DIR), "--no-progress-bar"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(output.read_text(encoding="utf-8"))


def stream_texts(executed: dict, name: str) -> list[str]:
    """The text of every ``name`` ("stdout"/"stderr") output, cell by cell."""
    return ["".join(output["text"]) for cell in executed["cells"]
            for output in cell.get("outputs", []) if output.get("name") == name]


@pytest.fixture
def project_cache_cleaned(truncated_dataset):
    """The notebooks cache into the project's data/cache/: remove this dataset's files after."""
    yield truncated_dataset
    index_file = cache.cache_file(truncated_dataset.root, IMAGE_SIZE, 1)
    for path in [index_file, *index_file.parent.glob(f"{index_file.stem}.*.pixels.npy")]:
        path.unlink(missing_ok=True)


@pytest.mark.parametrize("notebook", ["03_training", "04_fps_benchmark"])
def test_notebook_skips_truncated_images_with_one_warning(notebook: str, project_cache_cleaned,
                                                          tmp_path: Path) -> None:
    dataset = project_cache_cleaned
    executed = run_papermill(notebook, dataset.root, tmp_path)
    assert any(EXPECTED_OUTPUT[notebook] in text for text in stream_texts(executed, "stdout"))
    warnings = [text for text in stream_texts(executed, "stderr") if "DatasetWarning" in text]
    both = [text for text in warnings if dataset.png.name in text and dataset.jpg.name in text]
    assert len(both) == 1 and "2 file(s) skipped (they do not decode)" in both[0], warnings
    others = [text for text in warnings if text not in both]
    if notebook == "04_fps_benchmark":  # the end-to-end cell reads test/ again: one more,
        assert len(others) == 1, warnings  # for both batch sizes together
        assert "1 file(s) skipped" in others[0] and dataset.jpg.name in others[0]
    else:
        assert others == []
