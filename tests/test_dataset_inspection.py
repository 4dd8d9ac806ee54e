"""Notebook 01's inspection helpers that decide what it prints: which files are left out
(``drop_undecodable``), how sizes are summarised, whether brightness alone separates the
classes; and the reasons notebooks 03/04 build from where a value came from."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from course_utils.part_one import dataset_inspection as inspection
from course_utils.part_one.data_errors import DatasetError, DatasetWarning
from course_utils.part_one.dataset import find_images
from course_utils.part_one.presets import value_origin
from course_utils.part_one.train_curves import plain_run_verdict


def test_drop_undecodable_moves_a_truncated_image_out_of_every_count(writable_dataset,
                                                                     cut_png) -> None:
    cut = cut_png(writable_dataset / "train" / "circles" / "circles_0001.png")
    index = find_images(writable_dataset)
    assert cut in [p for p, _ in index.files["train"]]  # its header reads: find_images keeps it
    with pytest.warns(DatasetWarning, match="circles_0001.png"):
        kept = inspection.drop_undecodable(index)
    assert cut not in [p for p, _ in kept.files["train"]]
    assert len(kept.files["train"]) == len(index.files["train"]) - 1
    assert kept.counts().loc["circles", "train"] == index.counts().loc["circles", "train"] - 1
    assert cut not in [e.path for e in kept.headers]
    assert [line for line in inspection.skipped_lines(kept) if "circles_0001.png" in line] == [
        "train/circles/circles_0001.png: corrupt or truncated image (image file is truncated)"]


def test_drop_undecodable_returns_a_clean_index_unchanged(tiny_dataset_dir) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        index = find_images(tiny_dataset_dir)
        assert inspection.drop_undecodable(index) is index


def test_drop_undecodable_refuses_a_class_left_without_images(writable_dataset,
                                                              cut_png) -> None:
    for path in (writable_dataset / "test" / "circles").glob("*.png"):
        cut_png(path)
    with pytest.raises(DatasetError, match="test"):
        inspection.drop_undecodable(find_images(writable_dataset))


def test_size_sentence_says_one_size_or_how_sizes_vary() -> None:
    one = pd.DataFrame({"width": [800, 800], "height": [947, 947]})
    assert inspection.size_sentence(inspection.size_summary(one)) == \
        "every one of the 2 images is 800 wide x 947 high"
    mixed = pd.DataFrame({"width": [450, 690, 690, 100], "height": [637, 691, 691, 90]})
    summary = inspection.size_summary(mixed)
    assert summary["distinct_sizes"] == 3 and summary["common_images"] == 2
    assert inspection.size_sentence(summary) == (
        "3 different sizes in 4 images: width 100-690, height 90-691; the most common, "
        "690 wide x 691 high, is shared by 2 image(s)")


def test_brightness_only_accuracy_finds_a_dark_class_and_not_a_texture() -> None:
    rng = np.random.default_rng(0)
    bright = rng.integers(0, 256, size=(20, 8, 8))
    dark = rng.integers(10, 20, size=(20, 8, 8))
    images = np.concatenate([bright, dark]).astype(np.uint8)
    labels = np.repeat([0, 1], 20)
    separated = inspection.brightness_only_accuracy(images, labels, images, labels, 2)
    assert separated["accuracy"] == 1.0 and separated["chance"] == 0.5
    # Two classes with the same brightness statistics (one is the other, transposed).
    same = np.concatenate([bright, bright.transpose(0, 2, 1)]).astype(np.uint8)
    alike = inspection.brightness_only_accuracy(same, labels, same, labels, 2)
    assert alike["accuracy"] <= 0.5 + 0.2


def test_value_origin_names_the_cause() -> None:
    assert value_origin("epochs", 1, "quick") == "-p epochs 1 was given"
    assert value_origin("lr", 0.01, "quick") == "-p lr 0.01 was given"
    assert value_origin("epochs", None, "quick") == "the quick preset's default"


def test_plain_run_verdict_reads_the_run_without_warm_up() -> None:
    def run(lr: float, warmup: int, accuracy: float, loss: float) -> dict:
        return {"lr": lr, "batch_size": 32, "warmup_epochs": warmup, "final_accuracy": accuracy,
                "history": [{"train_loss": loss}]}
    record = {"classes": list("abcdef"), "config": {"batch_size": 32},
              "runs": [run(0.01, 2, 0.9, 0.1), run(0.01, 0, 0.15, 1.8)]}
    assert plain_run_verdict(record, 0.01) == "stuck at chance"
    assert plain_run_verdict(record, 0.001) is None
