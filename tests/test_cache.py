"""course_utils.part_one.cache: same pixels as decoding, reuse, invalidation, per-dataset keys,
files that do not decode."""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
from PIL import Image

from course_utils.part_one import cache
from course_utils.part_one.data_errors import DatasetError, DatasetWarning
from course_utils.part_one.data_spec import data_spec
from course_utils.part_one.dataset import find_images
from course_utils.part_one.dataset_generator import generate_dataset
from course_utils.part_one.decode import load_image

CLASSES = ["checkerboard", "circles", "vertical_stripes"]


@pytest.fixture()
def dataset(tmp_path):
    return generate_dataset(tmp_path / "ds", train_per_class=3, test_per_class=2, width=48,
                            height=56, classes=CLASSES)


def load(dataset, tmp_path, split="train", size=32, channels=1):
    stats = cache.CacheStats()
    index = find_images(dataset)
    images, labels = cache.load_cached_split(index, split, size, channels,
                                             cache_dir=tmp_path / "cache", stats=stats)
    return images, labels, stats


def test_cached_pixels_equal_direct_decoding(dataset, tmp_path):
    images, labels, stats = load(dataset, tmp_path)
    index = find_images(dataset)
    direct = np.stack([load_image(p, 32, 1) for p, _ in index.files["train"]])
    assert images.dtype.is_floating_point is False and images.shape == (9, 1, 32, 32)
    assert np.array_equal(images.numpy(), direct)
    assert labels.tolist() == [label for _, label in index.files["train"]]
    assert (stats.decoded, stats.reused) == (9, 0)


def test_second_load_reuses_everything(dataset, tmp_path):
    first, _, _ = load(dataset, tmp_path)
    second, _, stats = load(dataset, tmp_path)
    assert (stats.decoded, stats.reused) == (0, 9)
    assert np.array_equal(first.numpy(), second.numpy())


def test_changed_file_is_decoded_again(dataset, tmp_path):
    before, _, _ = load(dataset, tmp_path)
    target = find_images(dataset).files["train"][0][0]
    Image.fromarray(np.full((56, 48), 255, np.uint8), mode="L").save(target)
    stat = target.stat()  # a later edit: make sure the timestamp moves even on coarse clocks
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    after, _, stats = load(dataset, tmp_path)
    assert (stats.decoded, stats.reused) == (1, 8)
    assert (after[0] == 255).all() and not (before[0] == 255).all()
    assert np.array_equal(after[1:].numpy(), before[1:].numpy())


def test_deleted_file_leaves_the_cache(dataset, tmp_path):
    load(dataset, tmp_path)
    target = find_images(dataset).files["train"][0][0]
    target.unlink()
    images, _, stats = load(dataset, tmp_path)
    assert len(images) == 8 and stats.decoded == 0
    stored = np.load(cache.cache_file(dataset, 32, 1, tmp_path / "cache"))
    assert len(stored["names"]) == 8  # the test split was never loaded


def test_keys_separate_size_channels_and_dataset(dataset, tmp_path):
    other = generate_dataset(tmp_path / "other", train_per_class=1, test_per_class=1, width=48,
                             height=56, classes=CLASSES[:2])
    folder = tmp_path / "cache"
    names = {cache.cache_file(dataset, 32, 1, folder), cache.cache_file(dataset, 64, 1, folder),
             cache.cache_file(dataset, 32, 3, folder), cache.cache_file(other, 32, 1, folder)}
    assert len(names) == 4
    rgb, _, _ = load(dataset, tmp_path, channels=3)
    assert rgb.shape == (9, 3, 32, 32) and np.array_equal(rgb[:, 0], rgb[:, 2])


def test_corrupt_cache_file_is_rebuilt(dataset, tmp_path):
    load(dataset, tmp_path)
    cache.cache_file(dataset, 32, 1, tmp_path / "cache").write_bytes(b"garbage")
    images, _, stats = load(dataset, tmp_path)
    assert stats.decoded == 9 and images.shape[0] == 9


def test_subset_matches_the_plain_dataset(dataset, tmp_path):
    from course_utils.part_one.dataset import ImageFolderDataset
    index = find_images(dataset)
    images, labels = cache.load_cached_split(index, "train", 32, 1, subset=2, seed=5,
                                             cache_dir=tmp_path / "cache")
    plain = ImageFolderDataset(index, "train", 32, 1, subset=2, seed=5)
    assert labels.tolist() == plain.targets
    x, _ = plain[0]
    assert np.allclose(images[0].float() / 255, x)


def test_any_order_gives_the_same_pixels(dataset, tmp_path):
    load(dataset, tmp_path)  # builds the cache
    paths = [p for p, _ in find_images(dataset).files["train"]]
    stats = cache.CacheStats()
    pixels = cache.load_images(dataset, paths, 32, 1, cache_dir=tmp_path / "cache", stats=stats)
    assert stats.reused == 9
    shuffled = cache.load_images(dataset, paths[::-1], 32, 1, cache_dir=tmp_path / "cache")
    assert np.array_equal(shuffled, pixels[::-1])


def test_adding_a_split_keeps_the_other(dataset, tmp_path):
    load(dataset, tmp_path)
    load(dataset, tmp_path, split="test")  # adds the test split: the cache is rewritten
    assert len(list((tmp_path / "cache").iterdir())) == 1  # one file, no temporary left
    train, _, stats = load(dataset, tmp_path)
    assert (stats.decoded, stats.reused) == (0, 9) and train.shape == (9, 1, 32, 32)


def test_file_outside_the_dataset_is_named(dataset, tmp_path):
    outside = tmp_path / "elsewhere.png"
    Image.fromarray(np.zeros((8, 8), np.uint8), mode="L").save(outside)
    with pytest.raises(ValueError, match="elsewhere.png is not inside the dataset folder"):
        cache.load_images(dataset, [outside], 32, 1, cache_dir=tmp_path / "cache")


# ---- files that do not decode (truncated) are skipped, never stored -------------------------

def decode_warnings(record) -> list[str]:
    return [str(w.message) for w in record if issubclass(w.category, DatasetWarning)]


def test_truncated_files_are_skipped_with_one_warning(truncated_dataset, tmp_path):
    with pytest.warns(DatasetWarning) as record:
        splits, classes = cache.load_cached_splits(data_spec(truncated_dataset.root, 32),
                                                   cache_dir=tmp_path / "cache")
    [message] = decode_warnings(record)
    assert "2 file(s) skipped (they do not decode)" in message
    assert "circles_0001.png: corrupt or truncated" in message and "cut.jpg" in message
    index = find_images(truncated_dataset.root)
    for split, bad in (("train", truncated_dataset.png), ("test", truncated_dataset.jpg)):
        images, labels = splits[split]
        good = [(p, label) for p, label in index.files[split] if p != bad]
        assert labels.tolist() == [label for _, label in good]  # aligned with the images
        assert np.array_equal(images.numpy(), np.stack([load_image(p, 32, 1) for p, _ in good]))
    names = np.load(cache.cache_file(truncated_dataset.root, 32, 1, tmp_path / "cache"))["names"]
    assert "train/circles/circles_0001.png" not in names and len(names) == 17 + 12


def test_truncated_file_is_tried_again_and_used_once_fixed(truncated_dataset, tmp_path):
    index = find_images(truncated_dataset.root)
    paths = [p for p, _ in index.files["train"]]
    folder = tmp_path / "cache"
    with pytest.warns(DatasetWarning, match="circles_0001.png"):
        cache.load_images(truncated_dataset.root, paths, 32, 1, cache_dir=folder)
    [cache_path] = folder.iterdir()
    written = cache_path.stat().st_mtime_ns
    stats = cache.CacheStats()
    with pytest.warns(DatasetWarning, match=r"1 file\(s\) skipped.*circles_0001\.png"):
        again = cache.load_images(truncated_dataset.root, paths, 32, 1, cache_dir=folder,
                                  stats=stats)
    assert (stats.reused, stats.decoded, len(again)) == (17, 0, 17)
    assert [p for p, _ in stats.skipped] == [truncated_dataset.png]
    assert cache_path.stat().st_mtime_ns == written  # nothing new: not rewritten
    fixed = np.full((76, 64), 200, np.uint8)
    Image.fromarray(fixed, mode="L").save(truncated_dataset.png)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pixels = cache.load_images(truncated_dataset.root, paths, 32, 1, cache_dir=folder,
                                   stats=stats)
    assert (stats.decoded, stats.skipped, len(pixels)) == (1, [], 18)
    assert (pixels[paths.index(truncated_dataset.png)] == 200).all()


def test_file_truncated_after_caching_loses_its_pixels(dataset, tmp_path):
    before, labels, _ = load(dataset, tmp_path)
    target = find_images(dataset).files["train"][4][0]
    content = target.read_bytes()
    target.write_bytes(content[:content.index(b"IHDR") + 121])
    with pytest.warns(DatasetWarning, match=target.name):
        after, after_labels, stats = load(dataset, tmp_path)
    assert (len(after), stats.decoded) == (8, 0)
    assert after_labels.tolist() == labels.tolist()[:4] + labels.tolist()[5:]
    assert np.array_equal(after.numpy(), np.delete(before.numpy(), 4, axis=0))
    names = np.load(cache.cache_file(dataset, 32, 1, tmp_path / "cache"))["names"]
    assert f"train/{target.parent.name}/{target.name}" not in names  # old pixels not kept


def test_split_of_only_truncated_files_is_an_error(truncated_dataset, tmp_path):
    for path in (truncated_dataset.root / "test").rglob("*.png"):
        truncated_dataset.cut(path)
    with pytest.raises(DatasetError, match=r"dataset/test: 13 of 13 images cannot be decoded, "
                                           r"so no image is left.*copy or export"):
        cache.load_cached_splits(data_spec(truncated_dataset.root, 32),
                                 cache_dir=tmp_path / "cache")


def test_training_batches_skip_truncated_files(truncated_dataset, tmp_path, monkeypatch):
    from course_utils.part_one import loaders, presets
    monkeypatch.setattr(cache, "CACHE_DIR", tmp_path / "cache")
    config = presets.resolve_config("quick", data_dir=truncated_dataset.root, image_size=32)
    with pytest.warns(DatasetWarning) as record:
        train_batches, test_batches, classes = loaders.make_loaders(config)
    [message] = decode_warnings(record)
    assert "2 file(s) skipped" in message and "cut.jpg" in message
    assert (len(train_batches.images), len(train_batches.labels)) == (17, 17)
    assert (len(test_batches.images), len(test_batches.labels)) == (12, 12)
    assert np.bincount(train_batches.labels.numpy()).tolist() == [3, 2, 3, 3, 3, 3]
    assert classes.index("circles") == 1
