"""Tests for course_utils.part_one.dataset_generator: the seeded texture generator, the safe
install of the built-in dataset (ensure_sample_dataset) and the `make data` command line."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from course_utils.part_one import dataset_generator as generator
from course_utils.part_one.data_errors import DatasetError
from course_utils.part_one.dataset import find_images
from course_utils.part_one.dataset_generator import (
    SAMPLE_CLASSES,
    ensure_sample_dataset,
    generate_dataset,
)


def all_bytes(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*.png"))}


# ---- the generator ------------------------------------------------------------------------

def test_generator_is_deterministic(tmp_path: Path, tiny_spec, tiny_dataset_dir: Path) -> None:
    again = generate_dataset(tmp_path / "again", train_per_class=tiny_spec.train,
                             test_per_class=tiny_spec.test, seed=0,
                             width=tiny_spec.width, height=tiny_spec.height)
    assert all_bytes(again) == all_bytes(tiny_dataset_dir)


def test_generator_seed_changes_images(tmp_path: Path, tiny_spec, tiny_dataset_dir: Path) -> None:
    other = generate_dataset(tmp_path / "other", train_per_class=tiny_spec.train,
                             test_per_class=tiny_spec.test, seed=1,
                             width=tiny_spec.width, height=tiny_spec.height)
    first, second = all_bytes(tiny_dataset_dir), all_bytes(other)
    assert first.keys() == second.keys()
    assert all(first[name] != second[name] for name in first)


def test_generator_image_does_not_depend_on_dataset_size(tmp_path: Path, tiny_spec,
                                                          tiny_dataset_dir: Path) -> None:
    bigger = generate_dataset(tmp_path / "bigger", train_per_class=tiny_spec.train + 2,
                              test_per_class=1, seed=0, width=tiny_spec.width,
                              height=tiny_spec.height,
                              classes=["circles", "checkerboard"])
    small = all_bytes(tiny_dataset_dir)
    for name, content in all_bytes(bigger).items():
        if name in small:
            assert small[name] == content, name


def test_generator_layout_size_and_mode(tiny_spec, tiny_dataset_dir: Path) -> None:
    for split, count in (("train", tiny_spec.train), ("test", tiny_spec.test)):
        folders = sorted(p.name for p in (tiny_dataset_dir / split).iterdir())
        assert folders == sorted(SAMPLE_CLASSES)
        for folder in folders:
            files = sorted((tiny_dataset_dir / split / folder).glob("*.png"))
            assert len(files) == count
            with Image.open(files[0]) as image:
                assert image.size == (tiny_spec.width, tiny_spec.height)
                assert image.mode == "L"


def test_default_size_is_the_reports(tmp_path: Path) -> None:
    pixels = generator.draw_sample("circles", np.random.default_rng(0))
    assert pixels.shape == (947, 800)  # (height, width): the report's 800x947
    assert pixels.dtype == np.uint8


def direction_energy(pixels: np.ndarray) -> tuple[float, float]:
    """(mean |change| going down, mean |change| going right) of an image."""
    image = pixels.astype(float)
    down = np.abs(np.diff(image, axis=0)).mean()
    right = np.abs(np.diff(image, axis=1)).mean()
    return float(down), float(right)


@pytest.mark.parametrize("seed", range(5))
def test_stripes_run_the_way_their_class_says(seed: int) -> None:
    # Horizontal stripes change going down, vertical ones going right (the texture alone,
    # before contrast and noise): the classes differ by structure, not by brightness.
    def texture(name: str) -> np.ndarray:
        return generator._pattern(name, np.random.default_rng(seed), 120, 100)
    down, right = direction_energy(texture("horizontal_stripes"))
    assert down > 3 * right
    down, right = direction_energy(texture("vertical_stripes"))
    assert right > 3 * down
    down, right = direction_energy(texture("diagonal_lines"))
    assert 0.5 < down / right < 2


def test_generator_class_subset(tmp_path: Path) -> None:
    root = generate_dataset(tmp_path / "two", 1, 1, width=40, height=40,
                            classes=["noise_texture", "circles"])
    assert find_images(root).classes == ["circles", "noise_texture"]


@pytest.mark.parametrize("kwargs, name", [
    ({"classes": ["circles", "triangles"]}, "classes"),
    ({"classes": ["circles"]}, "classes"),
    ({"classes": ["circles", "circles"]}, "classes"),
    ({"train_per_class": 0}, "train_per_class"),
    ({"test_per_class": 1.5}, "test_per_class"),
    ({"width": 4}, "width"),
])
def test_generator_rejects_bad_arguments(tmp_path: Path, kwargs: dict, name: str) -> None:
    settings = {"train_per_class": 1, "test_per_class": 1, "width": 40, "height": 40} | kwargs
    with pytest.raises(DatasetError, match=name):
        generate_dataset(tmp_path / "bad", **settings)


# ---- ensure_sample_dataset ----------------------------------------------------------------

@pytest.fixture
def small_sample_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the 'built-in' dataset 1 + 1 images per class so these tests stay fast."""
    monkeypatch.setattr(generator, "SAMPLE_TRAIN_PER_CLASS", 1)
    monkeypatch.setattr(generator, "SAMPLE_TEST_PER_CLASS", 1)


def test_ensure_sample_builds_silently_once(tmp_path: Path, small_sample_settings: None,
                                            capsys: pytest.CaptureFixture) -> None:
    root = tmp_path / "sample"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert ensure_sample_dataset(root) == root
        index = find_images(root)
    assert {split: len(items) for split, items in index.files.items()} == {"train": 6, "test": 6}
    assert (root / generator.COMPLETE_MARKER).is_file()
    stamps = {p: p.stat().st_mtime_ns for p in root.rglob("*.png")}
    ensure_sample_dataset(root)  # complete: nothing is rewritten
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*.png")} == stamps
    assert capsys.readouterr() == ("", "")
    assert [p.name for p in tmp_path.iterdir()] == ["sample"]  # no temporary folders left


def test_ensure_sample_rebuilds_incomplete(tmp_path: Path, small_sample_settings: None) -> None:
    root = ensure_sample_dataset(tmp_path / "sample")
    reference = all_bytes(root)
    next(root.rglob("*.png")).unlink()  # a file lost
    ensure_sample_dataset(root)
    assert all_bytes(root) == reference


def test_ensure_sample_ignores_interrupted_build(tmp_path: Path,
                                                 small_sample_settings: None) -> None:
    # A half-written folder with images but no completion marker must not count as built.
    root = tmp_path / "sample"
    generate_dataset(root, 1, 1, width=40, height=40, classes=["circles", "checkerboard"])
    ensure_sample_dataset(root)
    assert find_images(root).classes == sorted(SAMPLE_CLASSES)


def test_ensure_sample_rebuilds_other_generator_version(tmp_path: Path,
                                                        small_sample_settings: None,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    root = ensure_sample_dataset(tmp_path / "sample")
    monkeypatch.setattr(generator, "GENERATOR_VERSION", generator.GENERATOR_VERSION + 1)
    assert not generator._is_complete(root, generator._sample_settings())
    ensure_sample_dataset(root)
    assert generator._is_complete(root, generator._sample_settings())


@pytest.mark.parametrize("stale", [False, True])
def test_concurrent_builds_agree(tmp_path: Path, small_sample_settings: None, stale: bool) -> None:
    # Several notebooks may start at once on a fresh clone: every caller must get the one
    # complete dataset, with no temporary folder left behind.
    import threading
    root = tmp_path / "sample"
    if stale:
        generate_dataset(root, 1, 1, width=40, height=40, classes=["circles", "checkerboard"])
    start = threading.Barrier(3)
    results, errors = [], []

    def build() -> None:
        start.wait()
        try:
            results.append(ensure_sample_dataset(root))
        except Exception as error:  # collected: a thread's exception would be lost
            errors.append(error)

    threads = [threading.Thread(target=build) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and results == [root] * 3
    assert generator._is_complete(root, generator._sample_settings())
    assert [p.name for p in tmp_path.iterdir()] == ["sample"]


# ---- the command line ------------------------------------------------------------------------

def test_cli_prints_one_line(tiny_dataset_dir: Path, capsys: pytest.CaptureFixture) -> None:
    generator.main([str(tiny_dataset_dir)])
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    assert out.endswith(": 18 train + 12 test images, 6 classes\n")


def test_cli_bad_folder_exits_with_message(tmp_path: Path,
                                           capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as stop:
        generator.main([str(tmp_path / "nowhere")])
    assert stop.value.code == 2
    assert "error: data_dir" in capsys.readouterr().err


# ---- abandoned builds ---------------------------------------------------------------------------

def test_abandoned_builds_are_removed_recent_ones_kept(tmp_path: Path,
                                                        small_sample_settings: None) -> None:
    import os
    import time
    old = tmp_path / ".sample.building-old"
    recent = tmp_path / ".sample.building-recent"
    for folder in (old, recent):
        (folder / "train").mkdir(parents=True)
    long_ago = time.time() - 2 * generator._ABANDONED_AFTER_S
    os.utime(old, (long_ago, long_ago))
    ensure_sample_dataset(tmp_path / "sample")
    assert not old.exists()  # left by a killed build: removed
    assert recent.exists()  # may be another process building right now: kept
