"""Shared pytest fixtures.

tiny_dataset_dir: a small generated dataset (6 classes, 3 train + 2 test images each, 64x76
pixels), built once per test session. Read it, never modify it: copy it with
``writable_dataset`` first.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

from course_utils.data import generate_dataset

TINY_TRAIN_PER_CLASS = 3
TINY_TEST_PER_CLASS = 2
TINY_WIDTH = 64
TINY_HEIGHT = 76


@pytest.fixture(scope="session")
def tiny_spec() -> SimpleNamespace:
    """What tiny_dataset_dir holds: train / test images per class, width, height, classes."""
    from course_utils.data import SAMPLE_CLASSES
    return SimpleNamespace(train=TINY_TRAIN_PER_CLASS, test=TINY_TEST_PER_CLASS,
                           width=TINY_WIDTH, height=TINY_HEIGHT, classes=sorted(SAMPLE_CLASSES))


@pytest.fixture(scope="session")
def tiny_dataset_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A read-only tiny built-in dataset: <dir>/{train,test}/<class>/*.png, 6 classes."""
    root = tmp_path_factory.mktemp("tiny_dataset")
    return generate_dataset(root, train_per_class=TINY_TRAIN_PER_CLASS,
                            test_per_class=TINY_TEST_PER_CLASS, seed=0,
                            width=TINY_WIDTH, height=TINY_HEIGHT)


@pytest.fixture
def writable_dataset(tiny_dataset_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the tiny dataset that a test may break (add bad files, remove folders)."""
    return Path(shutil.copytree(tiny_dataset_dir, tmp_path / "dataset"))


# Property tests: no per-example deadline (this 2-core machine is shared and noisy) and, under
# CI, a fixed example sequence so a red run can be replayed exactly.
from hypothesis import settings  # noqa: E402

settings.register_profile("course", deadline=None, print_blob=True)
settings.register_profile("ci", parent=settings.get_profile("course"), derandomize=True)
settings.load_profile("ci" if os.environ.get("CI") else "course")
