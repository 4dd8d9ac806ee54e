"""Shared pytest fixtures.

tiny_dataset_dir: a small generated dataset (6 classes, 3 train + 2 test images each, 64x76
pixels), built once per test session. Read it, never modify it: copy it with
``writable_dataset`` first. truncated_dataset: such a copy with one truncated PNG in train/ and
one truncated JPEG in test/ (headers intact, pixel data cut short).
course_release: one ``make release`` (bundle included) into a temporary dist/, shared by the
student bundle's and the book's leak tests.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from course_utils.part_one.dataset_generator import generate_dataset
from course_utils.paths import PROJECT_ROOT

TINY_TRAIN_PER_CLASS = 3
TINY_TEST_PER_CLASS = 2
TINY_WIDTH = 64
TINY_HEIGHT = 76


@pytest.fixture(scope="session")
def tiny_spec() -> SimpleNamespace:
    """What tiny_dataset_dir holds: train / test images per class, width, height, classes."""
    from course_utils.part_one.dataset_generator import SAMPLE_CLASSES
    return SimpleNamespace(train=TINY_TRAIN_PER_CLASS, test=TINY_TEST_PER_CLASS,
                           width=TINY_WIDTH, height=TINY_HEIGHT, classes=sorted(SAMPLE_CLASSES))


@pytest.fixture(scope="session")
def tiny_dataset_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A read-only tiny built-in dataset: <dir>/{train,test}/<class>/*.png, 6 classes."""
    root = tmp_path_factory.mktemp("tiny_dataset")
    return generate_dataset(root, train_per_class=TINY_TRAIN_PER_CLASS,
                            test_per_class=TINY_TEST_PER_CLASS, seed=0,
                            width=TINY_WIDTH, height=TINY_HEIGHT)


@pytest.fixture(scope="session")
def course_release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One ``make release`` (the command line, bundle included) into a temporary dist/. Read it,
    never modify it."""
    out = tmp_path_factory.mktemp("release") / "dist"
    result = subprocess.run([sys.executable, "-m", "course_utils.instructor.grading", "release",
                             "--out", str(out)], capture_output=True, text=True, cwd=PROJECT_ROOT)
    assert result.returncode == 0, f"make release failed:\n{result.stdout}\n{result.stderr}"
    return out


@pytest.fixture
def writable_dataset(tiny_dataset_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the tiny dataset that a test may break (add bad files, remove folders)."""
    return Path(shutil.copytree(tiny_dataset_dir, tmp_path / "dataset"))


def cut_after_header(path: Path, keep: int = 100) -> Path:
    """Truncate the PNG ``path`` ``keep`` bytes after its IHDR chunk: the header still reads
    (size, mode), the pixel data ends early."""
    content = path.read_bytes()
    end_of_ihdr = content.index(b"IHDR") + 4 + 13 + 4  # type, 13 data bytes, CRC
    path.write_bytes(content[:end_of_ihdr + keep])
    return path


@pytest.fixture
def cut_png():
    """``cut_after_header``, for a test that truncates images of its own (a test module cannot
    import conftest by name: tests/fixtures has a conftest too)."""
    return cut_after_header


def truncated_jpeg(path: Path, like: Path) -> Path:
    """Write ``like``'s pixels to ``path`` as a JPEG cut in half."""
    from PIL import Image

    buffer = io.BytesIO()
    with Image.open(like) as image:
        image.save(buffer, format="JPEG")
    path.write_bytes(buffer.getvalue()[:len(buffer.getvalue()) // 2])
    return path


@pytest.fixture
def truncated_dataset(writable_dataset: Path) -> SimpleNamespace:
    """writable_dataset with train/circles/circles_0001.png truncated after its header and a
    truncated test/checkerboard/cut.jpg added: 17 good train + 12 good test images.

    Fields: root, png, jpg (the two broken files), cut (cut_after_header, to break more).
    """
    png = cut_after_header(writable_dataset / "train" / "circles" / "circles_0001.png")
    folder = writable_dataset / "test" / "checkerboard"
    jpg = truncated_jpeg(folder / "cut.jpg", like=folder / "checkerboard_0000.png")
    return SimpleNamespace(root=writable_dataset, png=png, jpg=jpg, cut=cut_after_header)


# Property tests: no per-example deadline (this 2-core machine is shared and noisy) and, under
# CI, a fixed example sequence so a red run can be replayed exactly.
from hypothesis import settings  # noqa: E402

settings.register_profile("course", deadline=None, print_blob=True)
settings.register_profile("ci", parent=settings.get_profile("course"), derandomize=True)
settings.load_profile("ci" if os.environ.get("CI") else "course")
