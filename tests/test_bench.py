"""course_utils.bench on a tiny model: the helpers count and time what they say they do."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from course_utils import bench
from course_utils.data import DatasetWarning, generate_dataset


class Tiny(nn.Module):
    """Conv + linear; counts its own forward calls and the images it saw."""

    def __init__(self) -> None:
        super().__init__()
        self.in_channels = 1
        self.conv = nn.Conv2d(1, 2, 3, padding=1)
        self.fc = nn.Linear(2 * 32 * 32, 3)
        self.calls, self.seen = 0, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        self.seen += len(x)
        return self.fc(torch.flatten(self.conv(x), 1))


def images(n: int = 10) -> torch.Tensor:
    return torch.randint(0, 256, (n, 1, 32, 32), dtype=torch.uint8,
                         generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("channels_last", [False, True])
def test_model_only_fps_runs_every_image_once_after_warmup(channels_last):
    model = Tiny()
    result = bench.model_only_fps(model, images(10), batch_size=4, device="cpu",
                                  warmup_batches=1, channels_last=channels_last)
    assert result["images"] == 10 and result["batch_size"] == 4
    assert model.calls == 1 + 3 and model.seen == 4 + 10  # warm-up batch + ceil(10 / 4)
    assert result["fps"] == pytest.approx(10 / result["seconds"])
    assert not model.training  # timed in eval mode


def test_sweep_has_one_row_per_batch_size():
    rows = bench.fps_sweep(Tiny(), images(8), [1, 2, 8], "cpu")
    assert [r["batch_size"] for r in rows] == [1, 2, 8]
    assert all(r["fps"] > 0 and r["images"] == 8 for r in rows)


def test_bad_batch_size_is_named():
    with pytest.raises(ValueError, match="batch_size"):
        bench.model_only_fps(Tiny(), images(4), batch_size=0, device="cpu")


def test_latency_percentiles_are_ordered():
    latency = bench.latency_percentiles(Tiny(), images(12), "cpu")
    assert set(latency) == {"p50", "p90", "p99"}
    assert 0 < latency["p50"] <= latency["p90"] <= latency["p99"]


def test_end_to_end_counts_the_whole_split(tmp_path):
    root = generate_dataset(tmp_path / "ds", train_per_class=1, test_per_class=3, width=40,
                            height=40, classes=["circles", "checkerboard", "noise_texture"])
    model = Tiny()
    result = bench.end_to_end_fps(model, root, 32, 1, batch_size=4, device="cpu",
                                  cache_dir=tmp_path / "cache")
    assert result["images"] == 9
    assert model.seen == 2 * 9  # warm-up pass + timed pass, every test image each time
    assert (tmp_path / "cache").is_dir()


def test_end_to_end_skips_truncated_files_with_one_warning(truncated_dataset, tmp_path):
    model = Tiny()
    with pytest.warns(DatasetWarning) as record:
        result = bench.end_to_end_fps(model, truncated_dataset.root, 32, 1, batch_size=4,
                                      device="cpu", cache_dir=tmp_path / "cache")
    messages = [str(w.message) for w in record if issubclass(w.category, DatasetWarning)]
    assert len(messages) == 1  # from the warm-up pass only, not again from the timed pass
    assert "1 file(s) skipped" in messages[0] and "cut.jpg" in messages[0]
    assert result["images"] == 12 and model.seen == 2 * 12  # the 12 readable test images


def test_matmul_gflops_is_positive_and_efficiency_is_a_ratio():
    gflops = bench.matmul_gflops("cpu", size=128, repeats=2)
    assert gflops > 0
    result = bench.efficiency(fps=10.0, gflops_image=2.0, matmul=40.0)
    assert result == {"achieved_gflops": 20.0, "matmul_gflops": 40.0, "ratio_to_matmul": 0.5}


def test_gflops_per_image_counts_the_conv_and_linear():
    model = Tiny()
    conv = 2 * (2 * 1 * 3 * 3) * 32 * 32  # multiply-adds per output value x outputs
    linear = 2 * (2 * 32 * 32) * 3
    assert bench.gflops_per_image(model, 32, 1) == pytest.approx((conv + linear) / 1e9)


def test_record_carries_the_environment():
    record = bench.benchmark_record("cpu", fps=1.0)
    assert record["fps"] == 1.0
    assert {"device", "cpu", "threads", "torch"} <= set(record["environment"])


def test_folded_batchnorm_gives_the_same_outputs():
    from course_utils.model import ReportCNN

    torch.manual_seed(0)
    model = ReportCNN(1, 3).eval()
    for module in model.modules():  # non-trivial running statistics
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    folded = bench.fold_batchnorm(model)
    x = torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        assert torch.allclose(folded(x), model(x), atol=1e-4, rtol=1e-4)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules())  # original untouched


@pytest.mark.parametrize("value, expected", [(None, [1, 2]), ([8, 32], [8, 32]),
                                             ("[8, 32]", [8, 32]), ("4,16", [4, 16])])
def test_batch_sizes_parameter(value, expected):
    assert bench.resolve_batch_sizes(value, [1, 2]) == expected


@pytest.mark.parametrize("value", ["", "eight", [0], [2.5], "[]"])
def test_bad_batch_sizes_parameter_is_named(value):
    with pytest.raises(ValueError, match="batch_sizes must be a list of positive integers"):
        bench.resolve_batch_sizes(value, [1])


def test_device_batches_hand_out_every_image_in_order():
    x = images(10)
    batches = list(bench.device_batches(x, 4, "cpu"))
    assert [len(b) for b in batches] == [4, 4, 2]
    assert torch.equal(torch.cat(batches), x)
    assert sum(len(b) for b in bench.device_batches(x[:0], 4, "cpu")) == 0


def test_warmup_last_runs_the_smaller_last_batch_before_timing():
    model = Tiny()
    bench.model_only_fps(model, images(10), batch_size=4, device="cpu", warmup_batches=1,
                         warmup_last=True)
    assert model.calls == 2 + 3 and model.seen == 4 + 2 + 10


def test_inference_variants_agree_and_unknown_names_are_refused():
    from course_utils.model import ReportCNN

    torch.manual_seed(0)
    model = ReportCNN(1, 3).eval()
    x = torch.rand(2, 1, 32, 32).contiguous(memory_format=torch.channels_last)
    plain = bench.inference_variant(model, "plain", "cpu", channels_last=True)
    folded = bench.inference_variant(model, "folded", "cpu", channels_last=True)
    with torch.no_grad():
        assert torch.allclose(folded(x), plain(x), atol=1e-4, rtol=1e-4)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    with pytest.raises(ValueError, match="variant must be one of"):
        bench.inference_variant(model, "fastest", "cpu")


def test_median_seconds_calls_run_repeats_times_and_takes_the_median() -> None:
    calls = []
    seconds = bench.median_seconds(lambda: calls.append(1), 5)
    assert len(calls) == 5
    assert 0 <= seconds < 0.1
    with pytest.raises(ValueError, match="repeats"):
        bench.median_seconds(lambda: None, 0)


def test_median_seconds_ignores_one_slow_call() -> None:
    import time

    delays = iter([0.0, 0.2, 0.0])  # the middle call is slow; the median is a fast one
    assert bench.median_seconds(lambda: time.sleep(next(delays)), 3) < 0.1


def test_conv_timings_has_one_row_per_size_and_consistent_ratios() -> None:
    timings = bench.conv_timings([3, 4], channels=1, batch=1, repeats=1, seed=0)
    assert list(timings.index) == [3, 4]
    assert list(timings.columns) == ["loops", "im2col", "torch conv2d", "loops / im2col",
                                     "im2col / torch"]
    assert (timings[["loops", "im2col", "torch conv2d"]] > 0).all().all()
    ratio = timings["loops"] / timings["im2col"]
    assert ratio.tolist() == timings["loops / im2col"].tolist()
