"""Batches for the training loop: uint8 images from the decoded cache, shuffled per epoch, and
their conversion to the float input the model takes on its device."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator

import torch

from course_utils.part_one.presets import TrainConfig


def to_model_input(images: torch.Tensor, device: torch.device,
                   channels_last: bool = False) -> torch.Tensor:
    """uint8 images (N, C, H, W) -> float32 in [0, 1] on ``device``.

    The uint8 batch crosses to the device first: 4x fewer bytes than float32.
    """
    x = images.to(device, non_blocking=True).float().div_(255.0)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return x


class TensorBatches:
    """Mini-batches from images already decoded in memory (the fast path).

    images: uint8 (N, C, H, W); labels: int64 (N,). Re-iterable: each pass reshuffles with
    the global torch RNG when ``shuffle`` (so ``torch.manual_seed`` fixes the order).
    Yields (uint8 images (B, C, H, W), labels (B,)).
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, batch_size: int,
                 shuffle: bool = False) -> None:
        if images.ndim != 4 or images.dtype != torch.uint8:
            raise ValueError(f"images must be uint8 (N, C, H, W), got {images.dtype} "
                             f"{tuple(images.shape)}")
        if len(labels) != len(images):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        self.images = images
        self.labels = labels.long()
        self.batch_size = int(batch_size)
        self.shuffle = shuffle

    def __len__(self) -> int:
        return math.ceil(len(self.images) / self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = len(self.images)
        order = torch.randperm(n) if self.shuffle else torch.arange(n)
        for start in range(0, n, self.batch_size):
            index = order[start:start + self.batch_size]
            yield self.images[index], self.labels[index]


def make_loaders(config: TrainConfig) -> tuple[TensorBatches, TensorBatches, list[str]]:
    """Train and test batches for ``config`` from the decoded cache (course_utils.part_one.cache).

    Returns (train batches, test batches, class names).
    """
    from course_utils.part_one.cache import load_cached_splits  # local: the data modules
    from course_utils.part_one.data_spec import data_spec  # are optional here

    spec = data_spec(config.data_dir, config.image_size, config.in_channels)  # None: built-in
    splits, classes = load_cached_splits(spec, subset=config.subset, seed=config.seed)
    train_images, train_labels = splits["train"]
    test_images, test_labels = splits["test"]
    return (TensorBatches(train_images, train_labels, config.batch_size, shuffle=True),
            TensorBatches(test_images, test_labels, config.batch_size, shuffle=False),
            classes)


def model_batches(batches: Iterable, device: torch.device, channels_last: bool = False,
                  before_batch: Callable[[int], None] | None = None) -> Iterator[
                      tuple[torch.Tensor, torch.Tensor]]:
    """(x float in [0, 1] on ``device``, labels on ``device``) for each (uint8 images
    (B, C, H, W), labels (B,)) of ``batches``: what ``training_loop``'s functions take.

    before_batch: called as ``before_batch(i)`` just before batch i is handed out, i.e. before
    the optimiser step that uses it (the warm-up sets that step's learning rate there).
    """
    for i, (images, labels) in enumerate(batches):
        if before_batch is not None:
            before_batch(i)
        yield to_model_input(images, device, channels_last), labels.to(device, non_blocking=True)
