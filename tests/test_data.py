"""Tests for the data modules of course_utils.part_one (data_spec, dataset, decode,
dataset_inspection): the one data specification, loading, inspection and every bad input.
The generator of the built-in dataset: tests/test_dataset_generator.py."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageFile

from course_utils import figures
from course_utils.part_one import dataset_inspection as inspection
from course_utils.part_one.data_errors import DatasetError, DatasetWarning
from course_utils.part_one.data_spec import DataSpec, data_spec
from course_utils.part_one.dataset import (
    DatasetIndex,
    ImageFolderDataset,
    choose_subset,
    find_images,
    load_splits,
)
from course_utils.part_one.dataset_generator import (
    SAMPLE_CLASSES,
    generate_dataset,
)
from course_utils.part_one.dataset_inspection import inspect_dataset
from course_utils.part_one.decode import load_image
from course_utils.part_one.model import replication_equivalence_error
from course_utils.part_one.report_cnn import MIN_IMAGE_SIZE

# Must match tests/conftest.py (checked by test_tiny_spec_matches_conftest).
TINY_TRAIN_PER_CLASS, TINY_TEST_PER_CLASS, TINY_WIDTH, TINY_HEIGHT = 3, 2, 64, 76


def all_bytes(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*.png"))}


def save_png(path: Path, image: Image.Image) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format="PNG")
    return path


def gray_image(value: int = 128, size: tuple[int, int] = (40, 48)) -> Image.Image:
    return Image.fromarray(np.full(size[::-1], value, dtype=np.uint8), mode="L")


def quiet_find_images(root: Path) -> DatasetIndex:
    """find_images with warnings turned into errors: the tiny dataset must be warning-free."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return find_images(root)


def test_tiny_spec_matches_conftest(tiny_spec) -> None:
    assert (tiny_spec.train, tiny_spec.test, tiny_spec.width, tiny_spec.height) == (
        TINY_TRAIN_PER_CLASS, TINY_TEST_PER_CLASS, TINY_WIDTH, TINY_HEIGHT)


# ---- data_spec: the one default rule and check ---------------------------------------------

def test_data_spec_none_uses_builtin(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr("course_utils.part_one.data_spec.ensure_sample_dataset", lambda: tmp_path)
    assert data_spec(None) == DataSpec(tmp_path, 256, 1)
    assert data_spec(None, None, 3, default_size=64) == DataSpec(tmp_path, 64, 3)


def test_data_spec_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="does not exist.*data_dir=None"):
        data_spec(tmp_path / "nowhere")


def test_data_spec_file_not_folder(tmp_path: Path) -> None:
    file = tmp_path / "file.png"
    file.write_bytes(b"x")
    with pytest.raises(DatasetError, match="is not a folder"):
        data_spec(file)


@pytest.mark.parametrize("kwargs, message", [
    ({"image_size": MIN_IMAGE_SIZE - 1}, "image_size must be an integer >= 32, got 31"),
    ({"image_size": True}, "image_size must be an integer"),
    ({"in_channels": 2}, "in_channels must be 1 .* or 3"),
])
def test_data_spec_bad_values(tiny_dataset_dir: Path, kwargs: dict, message: str) -> None:
    with pytest.raises(DatasetError, match=message):
        data_spec(tiny_dataset_dir, **kwargs)


def test_loaders_never_build_the_builtin_dataset() -> None:
    with pytest.raises(DatasetError, match="resolve it first with data_spec"):
        find_images(None)


# ---- find_images: a good dataset -------------------------------------------------------------

def test_find_images_lists_every_image(tiny_dataset_dir: Path) -> None:
    index = quiet_find_images(tiny_dataset_dir)
    assert index.classes == sorted(SAMPLE_CLASSES)
    assert index.num_classes == 6
    assert len(index.files["train"]) == 6 * TINY_TRAIN_PER_CLASS
    assert len(index.files["test"]) == 6 * TINY_TEST_PER_CLASS
    for items in index.files.values():
        for path, label in items:
            assert path.parent.name == index.classes[label]
    assert index.counts()["train"].tolist() == [TINY_TRAIN_PER_CLASS] * 6
    assert index.skipped == [] and index.converted == []


@pytest.mark.parametrize("classes", [["circles", "checkerboard"],
                                     ["noise_texture", "circles", "vertical_stripes"]])
def test_number_of_classes_comes_from_the_folders(tmp_path: Path, classes: list[str]) -> None:
    root = generate_dataset(tmp_path / "ds", 2, 1, width=40, height=40, classes=classes)
    train, test = load_splits(data_spec(root, 32))
    assert train.classes == sorted(classes) == test.classes
    assert sorted(set(train.targets)) == list(range(len(classes)))


# ---- find_images: bad layouts raise ----------------------------------------------------------

def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="nowhere.*does not exist"):
        find_images(tmp_path / "nowhere")


@pytest.mark.parametrize("split", ["train", "test"])
def test_missing_split(writable_dataset: Path, split: str) -> None:
    import shutil
    shutil.rmtree(writable_dataset / split)
    with pytest.raises(DatasetError, match=rf"no {split}/ folder.*train/<class>"):
        find_images(writable_dataset)


def test_no_class_folders(tmp_path: Path) -> None:
    for split in ("train", "test"):
        save_png(tmp_path / split / "loose.png", gray_image())
    with pytest.raises(DatasetError, match="train.*has no class folders.*sub-folder"):
        find_images(tmp_path)


def test_empty_class(writable_dataset: Path) -> None:
    for path in (writable_dataset / "test" / "circles").iterdir():
        path.unlink()
    with pytest.raises(DatasetError, match="test/circles.*no usable images.*remove the class"):
        find_images(writable_dataset)


def test_class_with_only_bad_files_counts_as_empty(writable_dataset: Path) -> None:
    folder = writable_dataset / "train" / "circles"
    for path in folder.iterdir():
        path.unlink()
    (folder / "readme.txt").write_text("nothing here")
    with pytest.warns(DatasetWarning), pytest.raises(DatasetError, match="train/circles"):
        find_images(writable_dataset)


def test_different_class_sets(writable_dataset: Path) -> None:
    (writable_dataset / "test" / "circles").rename(writable_dataset / "test" / "disks")
    with pytest.raises(DatasetError,
                       match=r"different classes \(only in train: \['circles'\], "
                             r"only in test: \['disks'\]\)"):
        find_images(writable_dataset)


def test_single_class(tmp_path: Path) -> None:
    for split in ("train", "test"):
        save_png(tmp_path / split / "only" / "a.png", gray_image())
    with pytest.raises(DatasetError, match="only one class"):
        find_images(tmp_path)


# ---- find_images: bad files are skipped with a warning -------------------------------------

def test_corrupt_image_is_skipped(writable_dataset: Path) -> None:
    bad = writable_dataset / "train" / "circles" / "broken.png"
    bad.write_bytes(b"this is not a PNG at all" * 10)
    with pytest.warns(DatasetWarning, match=r"broken\.png: corrupt or unreadable.*Remove"):
        index = find_images(writable_dataset)
    assert bad not in [p for p, _ in index.files["train"]]
    assert [p for p, _ in index.skipped] == [bad]
    assert len(index.files["train"]) == 6 * TINY_TRAIN_PER_CLASS


def test_non_image_file_is_skipped(writable_dataset: Path) -> None:
    notes = writable_dataset / "test" / "circles" / "notes.txt"
    notes.write_text("labels were checked by hand")
    with pytest.warns(DatasetWarning, match=r"notes\.txt: not an image file"):
        index = find_images(writable_dataset)
    assert index.skipped == [(notes, "not an image file (extension '.txt')")]


def test_file_outside_class_folder_is_skipped(writable_dataset: Path) -> None:
    stray = save_png(writable_dataset / "train" / "stray.png", gray_image())
    with pytest.warns(DatasetWarning, match=r"stray\.png: not inside a class folder"):
        index = find_images(writable_dataset)
    assert [p for p, _ in index.skipped] == [stray]


def test_hidden_files_are_ignored_silently(writable_dataset: Path) -> None:
    (writable_dataset / "train" / "circles" / ".DS_Store").write_bytes(b"\0\1")
    (writable_dataset / "train" / ".hidden_class").mkdir()
    index = quiet_find_images(writable_dataset)
    assert index.skipped == []


def test_too_small_image_is_skipped(writable_dataset: Path) -> None:
    tiny = save_png(writable_dataset / "train" / "circles" / "thumb.png",
                    gray_image(size=(MIN_IMAGE_SIZE - 1, 60)))
    with pytest.warns(DatasetWarning, match=rf"thumb\.png: {MIN_IMAGE_SIZE - 1}x60 is smaller "
                                            "than the model accepts"):
        index = find_images(writable_dataset)
    assert [p for p, _ in index.skipped] == [tiny]


def test_many_bad_files_make_one_short_warning(writable_dataset: Path) -> None:
    for i in range(8):
        (writable_dataset / "train" / "circles" / f"note{i}.txt").write_text("x")
    with pytest.warns(DatasetWarning, match=r"8 file\(s\) skipped.*\(and 3 more\)") as record:
        find_images(writable_dataset)
    assert len(record) == 1


def truncated_png(path: Path) -> Path:
    buffer = io.BytesIO()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (60, 50), dtype=np.uint8), mode="L").save(buffer, "PNG")
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    return path


def test_truncated_image_fails_clearly_on_load(writable_dataset: Path) -> None:
    bad = truncated_png(writable_dataset / "train" / "circles" / "cut.png")
    index = quiet_find_images(writable_dataset)  # the header is intact: kept by find_images
    assert bad in [p for p, _ in index.files["train"]]
    with pytest.raises(DatasetError, match=r"cut\.png: corrupt or truncated.*remove or re-export"):
        load_image(bad, 32)
    dataset = ImageFolderDataset(index, "train", image_size=32, verify=False)
    with pytest.raises(DatasetError, match=r"cut\.png"):
        dataset[[p for p, _ in dataset.samples].index(bad)]


def decode_warnings(record: pytest.WarningsRecorder) -> list[str]:
    """The texts of the 'do not decode' DatasetWarnings in ``record``."""
    return [str(w.message) for w in record
            if issubclass(w.category, DatasetWarning) and "do not decode" in str(w.message)]


def test_load_split_pixels_skips_truncated_files(truncated_dataset) -> None:
    index = quiet_find_images(truncated_dataset.root)  # headers read: both files are listed
    for split, bad in (("train", truncated_dataset.png), ("test", truncated_dataset.jpg)):
        with pytest.warns(DatasetWarning) as record:
            images, labels = inspection.load_split_pixels(index, split, 32)
        [message] = decode_warnings(record)
        assert "1 file(s) skipped" in message and bad.name in message
        good = [(p, label) for p, label in index.files[split] if p != bad]
        assert images.shape == (len(good), 32, 32)
        assert labels.tolist() == [label for _, label in good]
        assert np.array_equal(images, np.stack([load_image(p, 32)[0] for p, _ in good]))


def test_load_splits_skips_both_files_with_one_warning(truncated_dataset) -> None:
    with pytest.warns(DatasetWarning) as record:
        train, test = load_splits(data_spec(truncated_dataset.root, 32))
    [message] = decode_warnings(record)
    assert "2 file(s) skipped" in message
    assert "circles_0001.png: corrupt or truncated" in message and "cut.jpg" in message
    assert (len(train), len(test)) == (6 * TINY_TRAIN_PER_CLASS - 1, 6 * TINY_TEST_PER_CLASS)
    assert truncated_dataset.png not in [p for p, _ in train.samples]
    assert truncated_dataset.jpg not in [p for p, _ in test.samples]
    assert [p for p, _ in train.skipped] == [truncated_dataset.png]
    for dataset in (train, test):  # labels stay with their images
        assert dataset.targets == [label for _, label in dataset.samples]
        assert [dataset[i][1] for i in range(len(dataset))] == dataset.targets


def test_image_folder_dataset_warns_for_its_split(truncated_dataset) -> None:
    index = quiet_find_images(truncated_dataset.root)
    with pytest.warns(DatasetWarning, match=r"1 file\(s\) skipped.*cut\.jpg"):
        test = ImageFolderDataset(index, "test", image_size=32)
    assert len(test) == 6 * TINY_TEST_PER_CLASS


def test_pick_examples_passes_over_truncated_files(truncated_dataset,
                                                   tiny_dataset_dir: Path) -> None:
    good = quiet_find_images(tiny_dataset_dir)
    chosen = choose_subset(good.files["train"], 2, seed=3)
    assert inspection.pick_examples(good, "train", 2, seed=3) == [  # the same picks as before
        [p for p, label in chosen if label == i] for i in range(6)]
    index = quiet_find_images(truncated_dataset.root)
    with pytest.warns(DatasetWarning, match=r"1 file\(s\) skipped.*circles_0001\.png"):
        examples = inspection.pick_examples(index, "train", TINY_TRAIN_PER_CLASS)
    circles = index.classes.index("circles")
    assert truncated_dataset.png not in examples[circles] and len(examples[circles]) == 2
    assert [len(e) for i, e in enumerate(examples) if i != circles] == [3] * 5


@pytest.mark.parametrize("cut, error", [(12, True), (6, True), (5, False)])
def test_split_mostly_unreadable_is_an_error(truncated_dataset, cut: int, error: bool) -> None:
    """test/ holds 12 PNGs and the truncated JPEG: cutting ``cut`` PNGs leaves cut + 1 of 13
    unreadable; more than half is an error naming the folder, half or less a warning."""
    for path in sorted((truncated_dataset.root / "test").rglob("*.png"))[:cut]:
        truncated_dataset.cut(path)
    index = quiet_find_images(truncated_dataset.root)
    if not error:
        with pytest.warns(DatasetWarning, match=r"6 file\(s\) skipped.*\(and 1 more\)"):
            images, _ = inspection.load_split_pixels(index, "test", 32)
        assert len(images) == 7
        return
    message = rf"dataset/test: {cut + 1} of 13 images cannot be decoded.*copy or export"
    with pytest.raises(DatasetError, match=message):
        inspection.load_split_pixels(index, "test", 32)
    with pytest.raises(DatasetError, match=message):
        ImageFolderDataset(index, "test", image_size=32)
    with pytest.raises(DatasetError, match=message):
        load_splits(data_spec(truncated_dataset.root, 32))


# ---- odd image modes are converted -----------------------------------------------------------

def rgba_image() -> Image.Image:
    """40x40: left half opaque gray 200, right half fully transparent white."""
    pixels = np.zeros((40, 40, 4), dtype=np.uint8)
    pixels[:, :20] = (200, 200, 200, 255)
    pixels[:, 20:] = (255, 255, 255, 0)
    return Image.fromarray(pixels)


def test_rgba_is_composited_onto_black(tmp_path: Path) -> None:
    path = save_png(tmp_path / "rgba.png", rgba_image())
    pixels = load_image(path, 40, 1)[0]
    assert pixels[:, :19].min() == pixels[:, :19].max() == 200
    assert pixels[:, 21:].max() == 0


def test_palette_image_is_converted(tmp_path: Path) -> None:
    gray = gray_image(value=77, size=(40, 40)).convert("RGB").convert(
        "P", palette=Image.Palette.ADAPTIVE)
    path = save_png(tmp_path / "palette.png", gray)
    with Image.open(path) as image:
        assert image.mode == "P"
    assert np.all(load_image(path, 32, 1) == 77)


def test_16_bit_image_is_scaled_to_8_bit(tmp_path: Path) -> None:
    values = np.zeros((40, 40), dtype=np.uint16)
    values[:, :20] = 257 * 100
    values[:, 20:] = 65535
    path = save_png(tmp_path / "deep.png", Image.fromarray(values))
    with Image.open(path) as image:
        assert image.mode.startswith("I")
    pixels = load_image(path, 40, 1)[0]
    assert pixels[:, :19].max() == pixels[:, :19].min() == 100
    assert pixels[:, 21:].min() == 255


def test_odd_modes_are_kept_and_reported(writable_dataset: Path) -> None:
    folder = writable_dataset / "train" / "circles"
    save_png(folder / "rgba.png", rgba_image())
    save_png(folder / "palette.png",
             gray_image(size=(40, 40)).convert("RGB").convert("P", palette=Image.Palette.ADAPTIVE))
    save_png(folder / "deep.png", Image.fromarray(np.zeros((40, 40), np.uint16)))
    with pytest.warns(DatasetWarning, match="3 file.*converted to 8-bit grayscale"):
        index = find_images(writable_dataset)
    assert {p.name for p, _ in index.converted} == {"rgba.png", "palette.png", "deep.png"}
    assert len(index.files["train"]) == 6 * TINY_TRAIN_PER_CLASS + 3
    frame = inspect_dataset(index)  # the headers find_images read: no second scan
    modes = dict(zip(frame["file"], frame["mode"], strict=True))
    assert modes["train/circles/rgba.png"] == "RGBA"
    assert modes["train/circles/palette.png"] == "P"


# ---- load_image ------------------------------------------------------------------------------

@pytest.mark.parametrize("image_size, in_channels", [(32, 1), (64, 3), (256, 1)])
def test_load_image_shape_and_channels(tiny_dataset_dir: Path, image_size: int,
                                       in_channels: int) -> None:
    path = next((tiny_dataset_dir / "train" / "circles").glob("*.png"))
    pixels = load_image(path, image_size, in_channels)
    assert pixels.shape == (in_channels, image_size, image_size)
    assert pixels.dtype == np.uint8
    for channel in pixels[1:]:  # grayscale replicated: every channel is the same plane
        np.testing.assert_array_equal(channel, pixels[0])


def test_resize_is_antialiased(tmp_path: Path) -> None:
    # One-pixel stripes (0, 255, 0, ...) shrunk 8x: averaging gives mid-gray everywhere;
    # sampling single pixels (no antialiasing) would give pure black or white.
    stripes = np.zeros((256, 256), dtype=np.uint8)
    stripes[::2] = 255
    path = save_png(tmp_path / "stripes.png", Image.fromarray(stripes, mode="L"))
    pixels = load_image(path, 32, 1).astype(float)
    assert abs(pixels.mean() - 127.5) < 3
    assert pixels.std() < 10


@pytest.mark.parametrize("kwargs, message", [
    ({"image_size": MIN_IMAGE_SIZE - 1}, "image_size must be an integer >= 32, got 31"),
    ({"image_size": 64.0}, "image_size must be an integer"),
    ({"image_size": "64"}, "image_size must be an integer"),
    ({"in_channels": 2}, "in_channels must be 1 .* or 3"),
])
def test_load_image_bad_parameters(tiny_dataset_dir: Path, kwargs: dict, message: str) -> None:
    path = next((tiny_dataset_dir / "train" / "circles").glob("*.png"))
    settings = {"image_size": 64, "in_channels": 1} | kwargs
    with pytest.raises(DatasetError, match=message):
        load_image(path, **settings)


def test_load_image_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"gone\.png does not exist"):
        load_image(tmp_path / "gone.png", 64)


def test_load_image_corrupt_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    with pytest.raises(DatasetError, match=r"bad\.png: corrupt"):
        load_image(bad, 64)


# ---- ImageFolderDataset / load_splits --------------------------------------------------------

def test_dataset_item(tiny_dataset_dir: Path) -> None:
    index = quiet_find_images(tiny_dataset_dir)
    dataset = ImageFolderDataset(index, "test", image_size=48, in_channels=3)
    assert len(dataset) == 6 * TINY_TEST_PER_CLASS
    assert dataset.classes == index.classes
    x, label = dataset[3]
    assert x.dtype == torch.float32 and x.shape == (3, 48, 48)
    assert 0.0 <= x.min() and x.max() <= 1.0
    assert isinstance(label, int) and label == index.files["test"][3][1]
    expected = load_image(index.files["test"][3][0], 48, 3).astype(np.float32) / 255
    np.testing.assert_allclose(x.numpy(), expected, atol=1e-7)


def test_dataset_transform_and_dataloader(tiny_dataset_dir: Path) -> None:
    index = quiet_find_images(tiny_dataset_dir)
    dataset = ImageFolderDataset(index, "train", image_size=32,
                                 transform=lambda x: (x - 0.5) / 0.5)
    x, _ = dataset[0]
    assert x.min() < 0  # the transform ran: [0, 1] became [-1, 1]
    batch, labels = next(iter(torch.utils.data.DataLoader(dataset, batch_size=5)))
    assert batch.shape == (5, 1, 32, 32) and labels.shape == (5,)


def test_dataset_bad_split(tiny_dataset_dir: Path) -> None:
    with pytest.raises(DatasetError, match="split must be one of.*'val'"):
        ImageFolderDataset(quiet_find_images(tiny_dataset_dir), "val")


def test_dataset_bad_image_size(tiny_dataset_dir: Path) -> None:
    with pytest.raises(DatasetError, match="image_size"):
        ImageFolderDataset(quiet_find_images(tiny_dataset_dir), "train", image_size=8)


def test_subset_keeps_per_class_count_and_is_seeded(tiny_dataset_dir: Path) -> None:
    items = quiet_find_images(tiny_dataset_dir).files["train"]
    chosen = choose_subset(items, 2, seed=0)
    assert np.bincount([label for _, label in chosen]).tolist() == [2] * 6
    assert chosen == choose_subset(items, 2, seed=0)
    assert any(choose_subset(items, 2, seed=s) != chosen for s in range(1, 6))
    assert chosen == [item for item in items if item in chosen]  # original order kept
    assert choose_subset(items, 100) == items
    assert choose_subset(items, None) == items
    with pytest.raises(DatasetError, match="subset must be an integer >= 1"):
        choose_subset(items, 0)


def test_load_splits(tiny_dataset_dir: Path) -> None:
    train, test = load_splits(data_spec(tiny_dataset_dir, 32, 1), subset=1)
    assert (len(train), len(test)) == (6, 6)
    assert train.split == "train" and test.split == "test"
    assert train[0][0].shape == (1, 32, 32)


# ---- inspect_dataset -------------------------------------------------------------------------

def test_inspect_dataset(tiny_dataset_dir: Path) -> None:
    frame = inspect_dataset(quiet_find_images(tiny_dataset_dir))
    assert list(frame.columns) == ["split", "class", "file", "width", "height", "mode"]
    assert len(frame) == 6 * (TINY_TRAIN_PER_CLASS + TINY_TEST_PER_CLASS)
    assert set(frame["width"]) == {TINY_WIDTH} and set(frame["height"]) == {TINY_HEIGHT}
    assert set(frame["mode"]) == {"L"}
    first = frame.iloc[0]
    assert first["file"] == f"train/{first['class']}/{first['class']}_0000.png"
    assert frame.groupby("split").size().to_dict() == {"train": 18, "test": 12}


def test_inspect_dataset_reads_headers_only(tiny_dataset_dir: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    def no_decoding(self: ImageFile.ImageFile) -> None:
        raise AssertionError("inspect_dataset decoded pixel data")
    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    assert len(inspect_dataset(find_images(tiny_dataset_dir))) == 30


# ---- exploration helpers (notebook 01) -------------------------------------------------------



def test_resolution_counts_and_most_common_size() -> None:
    import pandas as pd
    frame = pd.DataFrame({"width": [800, 800, 640, 800], "height": [947, 947, 480, 947],
                          "mode": ["L", "L", "L", "RGBA"]})
    counts = inspection.resolution_counts(frame)
    assert counts.iloc[0].tolist() == [800, 947, "L", 2]
    assert counts["images"].sum() == 4
    assert inspection.most_common_size(frame) == (800, 947)


def test_pick_examples(tiny_dataset_dir: Path) -> None:
    index = quiet_find_images(tiny_dataset_dir)
    examples = inspection.pick_examples(index, "train", per_class=2, seed=0)
    assert len(examples) == index.num_classes
    for name, paths in zip(index.classes, examples, strict=True):
        assert len(paths) == 2 and all(p.parent.name == name for p in paths)
    assert examples == inspection.pick_examples(index, "train", per_class=2, seed=0)


def test_intensity_table_matches_numpy(tiny_dataset_dir: Path) -> None:
    index = quiet_find_images(tiny_dataset_dir)
    images, labels = inspection.load_split_pixels(index, "train", 32)
    assert images.shape == (6 * TINY_TRAIN_PER_CLASS, 32, 32) and images.dtype == np.uint8
    table = inspection.intensity_table(images, labels, index.classes)
    assert list(table.index) == [*index.classes, "all"]
    assert table.loc["all", "images"] == len(images)
    assert table.loc["all", "mean"] == pytest.approx(images.mean())
    circles = images[labels == index.classes.index("circles")].astype(float)
    assert table.loc["circles", "std"] == pytest.approx(circles.std())
    assert table.loc["circles", "p99"] == pytest.approx(np.percentile(circles, 99))


def test_replicated_conv_equals_summed_weights() -> None:
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 4, kernel_size=5, padding=2)
    gray = torch.rand(2, 1, 16, 16)
    assert replication_equivalence_error(conv, gray) < 1e-5
    # Averaging instead of summing the weights (a plausible slip) would be far off.
    with torch.no_grad():
        averaged = torch.nn.functional.conv2d(gray, conv.weight.mean(1, keepdim=True), conv.bias,
                                              padding=2)
        assert (conv(gray.expand(-1, 3, -1, -1)) - averaged).abs().max() > 1e-2
    with pytest.raises(ValueError, match="3 input channels"):
        replication_equivalence_error(torch.nn.Conv2d(1, 4, 3), gray)


def test_figures_draw(tiny_dataset_dir: Path) -> None:
    import matplotlib.pyplot as plt
    index = quiet_find_images(tiny_dataset_dir)
    images, labels = inspection.load_split_pixels(index, "train", 32)
    examples = inspection.pick_examples(index, "train", per_class=2)
    drawn = [figures.plot_class_balance(index.counts()),
             figures.plot_sample_grid(examples, index.classes, 32),
             figures.plot_intensity_histograms(images, labels, index.classes),
             figures.plot_resize(examples[0][0], 32),
             figures.plot_channels(load_image(examples[0][0], 32, 3))]
    assert [len(f.axes) for f in drawn][2:] == [6, 2, 3]
    assert len(drawn[1].axes) == 6 * 2
    for figure in drawn:
        plt.close(figure)
