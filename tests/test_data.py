"""Tests for course_utils.part_one.data: the generator, loading, inspection and every bad input."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageFile

from course_utils import figures
from course_utils.part_one import data
from course_utils.part_one.data import (
    SAMPLE_CLASSES,
    DatasetError,
    DatasetWarning,
    ImageFolderDataset,
    choose_subset,
    ensure_sample_dataset,
    find_images,
    generate_dataset,
    inspect_dataset,
    load_image,
    load_splits,
    resolve_data_dir,
    verify_images,
)
from course_utils.part_one.model import MIN_IMAGE_SIZE

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


def quiet_find_images(root: Path) -> data.DatasetIndex:
    """find_images with warnings turned into errors: the tiny dataset must be warning-free."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return find_images(root)


def test_tiny_spec_matches_conftest(tiny_spec) -> None:
    assert (tiny_spec.train, tiny_spec.test, tiny_spec.width, tiny_spec.height) == (
        TINY_TRAIN_PER_CLASS, TINY_TEST_PER_CLASS, TINY_WIDTH, TINY_HEIGHT)


# ---- the generator ------------------------------------------------------------------------

def test_generator_is_deterministic(tmp_path: Path, tiny_dataset_dir: Path) -> None:
    again = generate_dataset(tmp_path / "again", train_per_class=TINY_TRAIN_PER_CLASS,
                             test_per_class=TINY_TEST_PER_CLASS, seed=0,
                             width=TINY_WIDTH, height=TINY_HEIGHT)
    assert all_bytes(again) == all_bytes(tiny_dataset_dir)


def test_generator_seed_changes_images(tmp_path: Path, tiny_dataset_dir: Path) -> None:
    other = generate_dataset(tmp_path / "other", train_per_class=TINY_TRAIN_PER_CLASS,
                             test_per_class=TINY_TEST_PER_CLASS, seed=1,
                             width=TINY_WIDTH, height=TINY_HEIGHT)
    first, second = all_bytes(tiny_dataset_dir), all_bytes(other)
    assert first.keys() == second.keys()
    assert all(first[name] != second[name] for name in first)


def test_generator_image_does_not_depend_on_dataset_size(tmp_path: Path,
                                                          tiny_dataset_dir: Path) -> None:
    bigger = generate_dataset(tmp_path / "bigger", train_per_class=TINY_TRAIN_PER_CLASS + 2,
                              test_per_class=1, seed=0, width=TINY_WIDTH, height=TINY_HEIGHT,
                              classes=["circles", "checkerboard"])
    small = all_bytes(tiny_dataset_dir)
    for name, content in all_bytes(bigger).items():
        if name in small:
            assert small[name] == content, name


def test_generator_layout_size_and_mode(tiny_dataset_dir: Path) -> None:
    for split, count in (("train", TINY_TRAIN_PER_CLASS), ("test", TINY_TEST_PER_CLASS)):
        folders = sorted(p.name for p in (tiny_dataset_dir / split).iterdir())
        assert folders == sorted(SAMPLE_CLASSES)
        for folder in folders:
            files = sorted((tiny_dataset_dir / split / folder).glob("*.png"))
            assert len(files) == count
            with Image.open(files[0]) as image:
                assert image.size == (TINY_WIDTH, TINY_HEIGHT)
                assert image.mode == "L"


def test_default_size_is_the_reports(tmp_path: Path) -> None:
    pixels = data.draw_sample("circles", np.random.default_rng(0))
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
        return data._pattern(name, np.random.default_rng(seed), 120, 100)
    down, right = direction_energy(texture("horizontal_stripes"))
    assert down > 3 * right
    down, right = direction_energy(texture("vertical_stripes"))
    assert right > 3 * down
    down, right = direction_energy(texture("diagonal_lines"))
    assert 0.5 < down / right < 2


def test_generator_class_subset(tmp_path: Path) -> None:
    root = generate_dataset(tmp_path / "two", 1, 1, width=40, height=40,
                            classes=["noise_texture", "circles"])
    assert quiet_find_images(root).classes == ["circles", "noise_texture"]


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


# ---- ensure_sample_dataset / resolve_data_dir -----------------------------------------------

@pytest.fixture
def small_sample_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the 'built-in' dataset 1 + 1 images per class so these tests stay fast."""
    monkeypatch.setattr(data, "SAMPLE_TRAIN_PER_CLASS", 1)
    monkeypatch.setattr(data, "SAMPLE_TEST_PER_CLASS", 1)


def test_ensure_sample_builds_silently_once(tmp_path: Path, small_sample_settings: None,
                                            capsys: pytest.CaptureFixture) -> None:
    root = tmp_path / "sample"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert ensure_sample_dataset(root) == root
        index = find_images(root)
    assert {split: len(items) for split, items in index.files.items()} == {"train": 6, "test": 6}
    assert (root / data.COMPLETE_MARKER).is_file()
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
    assert quiet_find_images(root).classes == sorted(SAMPLE_CLASSES)


def test_ensure_sample_rebuilds_other_generator_version(tmp_path: Path,
                                                        small_sample_settings: None,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    root = ensure_sample_dataset(tmp_path / "sample")
    monkeypatch.setattr(data, "GENERATOR_VERSION", data.GENERATOR_VERSION + 1)
    assert not data._is_complete(root, data._sample_settings())
    ensure_sample_dataset(root)
    assert data._is_complete(root, data._sample_settings())


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
    assert data._is_complete(root, data._sample_settings())
    assert [p.name for p in tmp_path.iterdir()] == ["sample"]


def test_resolve_data_dir_none_uses_builtin(monkeypatch: pytest.MonkeyPatch,
                                            tmp_path: Path) -> None:
    monkeypatch.setattr(data, "ensure_sample_dataset", lambda: tmp_path)
    assert resolve_data_dir(None) == tmp_path


def test_resolve_data_dir_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="does not exist.*data_dir=None"):
        resolve_data_dir(tmp_path / "nowhere")


def test_resolve_data_dir_file_not_folder(tmp_path: Path) -> None:
    file = tmp_path / "file.png"
    file.write_bytes(b"x")
    with pytest.raises(DatasetError, match="is not a folder"):
        resolve_data_dir(file)


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
    train, test = load_splits(root, image_size=32)
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


def test_verify_images_drops_truncated(writable_dataset: Path) -> None:
    bad = truncated_png(writable_dataset / "test" / "circles" / "cut.png")
    with pytest.warns(DatasetWarning, match=r"cut\.png"):
        index = verify_images(quiet_find_images(writable_dataset))
    assert bad not in [p for p, _ in index.files["test"]]
    assert len(index.files["test"]) == 6 * TINY_TEST_PER_CLASS
    assert bad in [p for p, _ in index.skipped]


def decode_warnings(record: pytest.WarningsRecorder) -> list[str]:
    """The texts of the 'do not decode' DatasetWarnings in ``record``."""
    return [str(w.message) for w in record
            if issubclass(w.category, DatasetWarning) and "do not decode" in str(w.message)]


def test_load_split_pixels_skips_truncated_files(truncated_dataset) -> None:
    index = quiet_find_images(truncated_dataset.root)  # headers read: both files are listed
    for split, bad in (("train", truncated_dataset.png), ("test", truncated_dataset.jpg)):
        with pytest.warns(DatasetWarning) as record:
            images, labels = data.load_split_pixels(index, split, 32)
        [message] = decode_warnings(record)
        assert "1 file(s) skipped" in message and bad.name in message
        good = [(p, label) for p, label in index.files[split] if p != bad]
        assert images.shape == (len(good), 32, 32)
        assert labels.tolist() == [label for _, label in good]
        assert np.array_equal(images, np.stack([load_image(p, 32)[0] for p, _ in good]))


def test_load_splits_skips_both_files_with_one_warning(truncated_dataset) -> None:
    with pytest.warns(DatasetWarning) as record:
        train, test = load_splits(truncated_dataset.root, image_size=32)
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
    assert data.pick_examples(good, "train", 2, seed=3) == [  # the same picks as before
        [p for p, label in chosen if label == i] for i in range(6)]
    index = quiet_find_images(truncated_dataset.root)
    with pytest.warns(DatasetWarning, match=r"1 file\(s\) skipped.*circles_0001\.png"):
        examples = data.pick_examples(index, "train", TINY_TRAIN_PER_CLASS)
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
            images, _ = data.load_split_pixels(index, "test", 32)
        assert len(images) == 7
        return
    message = rf"dataset/test: {cut + 1} of 13 images cannot be decoded.*copy or export"
    with pytest.raises(DatasetError, match=message):
        data.load_split_pixels(index, "test", 32)
    with pytest.raises(DatasetError, match=message):
        ImageFolderDataset(index, "test", image_size=32)
    with pytest.raises(DatasetError, match=message):
        load_splits(truncated_dataset.root, image_size=32)


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
    with pytest.warns(DatasetWarning):
        frame = inspect_dataset(writable_dataset)
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
    ({"image_size": MIN_IMAGE_SIZE - 1}, "image_size=31 is smaller than the model accepts"),
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
    train, test = load_splits(tiny_dataset_dir, image_size=32, in_channels=1, subset=1)
    assert (len(train), len(test)) == (6, 6)
    assert train.split == "train" and test.split == "test"
    assert train[0][0].shape == (1, 32, 32)


def test_load_splits_none_is_builtin(monkeypatch: pytest.MonkeyPatch,
                                     tiny_dataset_dir: Path) -> None:
    monkeypatch.setattr(data, "ensure_sample_dataset", lambda: tiny_dataset_dir)
    train, _ = load_splits(None, image_size=32)
    assert train.root == tiny_dataset_dir


# ---- inspect_dataset -------------------------------------------------------------------------

def test_inspect_dataset(tiny_dataset_dir: Path) -> None:
    frame = inspect_dataset(tiny_dataset_dir)
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
    assert len(inspect_dataset(tiny_dataset_dir)) == 30


# ---- the command line ------------------------------------------------------------------------

def test_cli_prints_one_line(tiny_dataset_dir: Path, capsys: pytest.CaptureFixture) -> None:
    data.main([str(tiny_dataset_dir)])
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    assert out.endswith(": 18 train + 12 test images, 6 classes\n")


def test_cli_bad_folder_exits_with_message(tmp_path: Path,
                                           capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as stop:
        data.main([str(tmp_path / "nowhere")])
    assert stop.value.code == 2
    assert "error: data_dir" in capsys.readouterr().err


# ---- exploration helpers (notebook 01) -------------------------------------------------------

def test_abandoned_builds_are_removed_recent_ones_kept(tmp_path: Path,
                                                        small_sample_settings: None) -> None:
    import os
    import time
    old = tmp_path / ".sample.building-old"
    recent = tmp_path / ".sample.building-recent"
    for folder in (old, recent):
        (folder / "train").mkdir(parents=True)
    long_ago = time.time() - 2 * data._ABANDONED_AFTER_S
    os.utime(old, (long_ago, long_ago))
    ensure_sample_dataset(tmp_path / "sample")
    assert not old.exists()  # left by a killed build: removed
    assert recent.exists()  # may be another process building right now: kept


def test_resolution_counts_and_most_common_size() -> None:
    import pandas as pd
    frame = pd.DataFrame({"width": [800, 800, 640, 800], "height": [947, 947, 480, 947],
                          "mode": ["L", "L", "L", "RGBA"]})
    counts = data.resolution_counts(frame)
    assert counts.iloc[0].tolist() == [800, 947, "L", 2]
    assert counts["images"].sum() == 4
    assert data.most_common_size(frame) == (800, 947)


def test_pick_examples(tiny_dataset_dir: Path) -> None:
    index = quiet_find_images(tiny_dataset_dir)
    examples = data.pick_examples(index, "train", per_class=2, seed=0)
    assert len(examples) == index.num_classes
    for name, paths in zip(index.classes, examples, strict=True):
        assert len(paths) == 2 and all(p.parent.name == name for p in paths)
    assert examples == data.pick_examples(index, "train", per_class=2, seed=0)


def test_intensity_table_matches_numpy(tiny_dataset_dir: Path) -> None:
    index = quiet_find_images(tiny_dataset_dir)
    images, labels = data.load_split_pixels(index, "train", 32)
    assert images.shape == (6 * TINY_TRAIN_PER_CLASS, 32, 32) and images.dtype == np.uint8
    table = data.intensity_table(images, labels, index.classes)
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
    assert data.replication_equivalence_error(conv, gray) < 1e-5
    # Averaging instead of summing the weights (a plausible slip) would be far off.
    with torch.no_grad():
        averaged = torch.nn.functional.conv2d(gray, conv.weight.mean(1, keepdim=True), conv.bias,
                                              padding=2)
        assert (conv(gray.expand(-1, 3, -1, -1)) - averaged).abs().max() > 1e-2
    with pytest.raises(ValueError, match="3 input channels"):
        data.replication_equivalence_error(torch.nn.Conv2d(1, 4, 3), gray)


def test_figures_draw(tiny_dataset_dir: Path) -> None:
    import matplotlib.pyplot as plt
    index = quiet_find_images(tiny_dataset_dir)
    images, labels = data.load_split_pixels(index, "train", 32)
    examples = data.pick_examples(index, "train", per_class=2)
    drawn = [figures.plot_class_balance(index.counts()),
             figures.plot_sample_grid(examples, index.classes, 32),
             figures.plot_intensity_histograms(images, labels, index.classes),
             figures.plot_resize(examples[0][0], 32),
             figures.plot_channels(load_image(examples[0][0], 32, 3))]
    assert [len(f.axes) for f in drawn][2:] == [6, 2, 3]
    assert len(drawn[1].axes) == 6 * 2
    for figure in drawn:
        plt.close(figure)
