"""FPS and timing (course_utils.part_one: fps, cold_path, hardware, inference_variants,
fps_results, bench) on a tiny model: the helpers count and time what they say they do."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from course_utils.instructor.solutions import im2col
from course_utils.instructor.solutions.timing import measure_fps
from course_utils.part_one import (
    bench,
    cold_path,
    fps,
    fps_results,
    hardware,
    inference_variants,
)
from course_utils.part_one.data_errors import DatasetWarning
from course_utils.part_one.dataset_generator import generate_dataset


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
    result = fps.model_only_fps(model, images(10), batch_size=4, device="cpu",
                                measure_fps=measure_fps, warmup_batches=1,
                                channels_last=channels_last)
    assert result["images"] == 10 and result["batch_size"] == 4
    # warm-up: the first batch and the smaller last one (every shape); then ceil(10 / 4)
    assert model.calls == 2 + 3 and model.seen == 4 + 2 + 10
    assert result["fps"] == pytest.approx(10 / result["seconds"])
    assert not model.training  # timed in eval mode


def test_sweep_has_one_row_per_batch_size():
    rows = fps.fps_sweep(Tiny(), images(8), [1, 2, 8], "cpu", measure_fps=measure_fps)
    assert [r["batch_size"] for r in rows] == [1, 2, 8]
    assert all(r["fps"] > 0 and r["images"] == 8 for r in rows)


def test_bad_batch_size_is_named():
    with pytest.raises(ValueError, match="batch_size"):
        fps.model_only_fps(Tiny(), images(4), batch_size=0, device="cpu",
                           measure_fps=measure_fps)


def test_latency_percentiles_are_ordered():
    latency = hardware.latency_percentiles(Tiny(), images(12), "cpu")
    assert set(latency) == {"p50", "p90", "p99"}
    assert 0 < latency["p50"] <= latency["p90"] <= latency["p99"]


def small_dataset(folder):
    return generate_dataset(folder, train_per_class=1, test_per_class=3, width=40, height=40,
                            classes=["circles", "checkerboard", "noise_texture"])


def test_warm_counts_the_whole_split(tmp_path):
    root = small_dataset(tmp_path / "ds")
    model = Tiny()
    result = fps.warm_fps(model, root, 32, 1, batch_size=4, device="cpu",
                          cache_dir=tmp_path / "cache")
    assert result["images"] == 9
    assert model.seen == 2 * 9  # warm-up pass + timed pass, every test image each time
    assert (tmp_path / "cache").is_dir()


def test_end_to_end_is_the_former_name_of_warm():
    assert fps.end_to_end_fps is fps.warm_fps


def test_warm_skips_truncated_files_with_one_warning(truncated_dataset, tmp_path):
    model = Tiny()
    with pytest.warns(DatasetWarning) as record:
        result = fps.warm_fps(model, truncated_dataset.root, 32, 1, batch_size=4,
                              device="cpu", cache_dir=tmp_path / "cache")
    messages = [str(w.message) for w in record if issubclass(w.category, DatasetWarning)]
    assert len(messages) == 1  # from the warm-up pass only, not again from the timed pass
    assert "1 file(s) skipped" in messages[0] and "cut.jpg" in messages[0]
    assert result["images"] == 12 and model.seen == 2 * 12  # the 12 readable test images


@pytest.mark.parametrize("workers", [0, 2])
def test_cold_decodes_every_file_and_times_decode_only_on_the_same_loader(tmp_path, workers):
    root = small_dataset(tmp_path / "ds")
    model = Tiny()
    result = cold_path.cold_fps(model, root, 32, 1, batch_size=4, device="cpu", workers=workers,
                                repeats=2)
    assert result["images"] == 9 and result["skipped"] == 0
    assert result["workers"] == workers and result["chunk_size"] == 4
    # warm-up: one batch of each shape (4 and the last 1) on zeros; then 2 timed passes
    assert model.calls == 2 + 2 * 3 and model.seen == 4 + 1 + 2 * 9
    assert result["fps"] == pytest.approx(9 / result["seconds"])
    assert result["decode_only_fps"] == pytest.approx(9 / result["decode_only_seconds"])
    assert result["cold_over_decode_only"] == pytest.approx(
        result["fps"] / result["decode_only_fps"])
    from course_utils.part_one.cache import cache_file

    assert not cache_file(root, 32, 1).exists()  # the cold path writes no decoded cache


def test_cold_batches_hold_the_pixels_of_load_image(tmp_path):
    from course_utils.part_one.dataset import find_images
    from course_utils.part_one.decode import load_image

    root = small_dataset(tmp_path / "ds")
    paths = [path for path, _ in find_images(root).files["test"]]
    loader = cold_path.file_loader(paths, 32, 1, chunk_size=2, workers=0)
    batches = list(cold_path.rebatch(loader, 4, "cpu", skipped := []))
    assert [len(b) for b in batches] == [4, 4, 1] and skipped == []
    expected = torch.stack([torch.from_numpy(load_image(p, 32, 1)) for p in paths])
    assert torch.equal(torch.cat(batches), expected)


def test_rebatch_joins_and_splits_chunks_in_order():
    chunks = [(images(3), []), (images(0), [("bad.png", "cut")]), (images(5), [])]
    skipped = []
    batches = list(cold_path.rebatch(chunks, 4, "cpu", skipped))
    assert [len(b) for b in batches] == [4, 4]
    assert torch.equal(torch.cat(batches), torch.cat([images(3), images(5)]))
    assert skipped == [("bad.png", "cut")]
    with pytest.raises(ValueError, match="batch_size"):
        list(cold_path.rebatch(chunks, 0, "cpu", []))


def test_cold_skips_truncated_files_with_one_warning(truncated_dataset):
    model = Tiny()
    with pytest.warns(DatasetWarning) as record:
        result = cold_path.cold_fps(model, truncated_dataset.root, 32, 1, batch_size=4,
                                    device="cpu", workers=1)
    messages = [str(w.message) for w in record if issubclass(w.category, DatasetWarning)]
    assert len(messages) == 1 and "1 file(s) skipped" in messages[0]
    assert "cut.jpg" in messages[0]
    assert result["images"] == 12 and result["skipped"] == 1
    assert model.seen == 4 + 12  # warm-up batch (12 = 3 x 4: one shape) + the timed pass


def test_cold_without_warning_still_counts_the_skipped(truncated_dataset, recwarn):
    result = cold_path.cold_fps(Tiny(), truncated_dataset.root, 32, 1, batch_size=4,
                                device="cpu", workers=0, warn=False)
    assert result["skipped"] == 1 and result["images"] == 12
    assert not [w for w in recwarn if issubclass(w.category, DatasetWarning)]


def test_matmul_gflops_is_positive_and_efficiency_is_a_ratio():
    gflops = hardware.matmul_gflops("cpu", size=128, repeats=2)
    assert gflops > 0
    result = hardware.efficiency(fps=10.0, gflops_image=2.0, matmul=40.0)
    assert result == {"achieved_gflops": 20.0, "matmul_gflops": 40.0, "ratio_to_matmul": 0.5}


def test_gflops_per_image_counts_the_conv_and_linear():
    model = Tiny()
    conv = 2 * (2 * 1 * 3 * 3) * 32 * 32  # multiply-adds per output value x outputs
    linear = 2 * (2 * 32 * 32) * 3
    assert hardware.gflops_per_image(model, 32, 1) == pytest.approx((conv + linear) / 1e9)


def test_record_carries_the_environment():
    record = hardware.benchmark_record("cpu", fps=1.0)
    assert record["fps"] == 1.0
    assert {"device", "cpu", "threads", "torch"} <= set(record["environment"])


def test_folded_batchnorm_gives_the_same_outputs():
    from course_utils.part_one.model import ReportCNN

    torch.manual_seed(0)
    model = ReportCNN(1, 3).eval()
    for module in model.modules():  # non-trivial running statistics
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    folded = inference_variants.fold_batchnorm(model)
    x = torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        assert torch.allclose(folded(x), model(x), atol=1e-4, rtol=1e-4)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules())  # original untouched


@pytest.mark.parametrize("value, expected", [(None, [1, 2]), ([8, 32], [8, 32]),
                                             ("[8, 32]", [8, 32]), ("4,16", [4, 16])])
def test_batch_sizes_parameter(value, expected):
    assert fps.resolve_batch_sizes(value, [1, 2]) == expected


@pytest.mark.parametrize("value", ["", "eight", [0], [2.5], "[]"])
def test_bad_batch_sizes_parameter_is_named(value):
    with pytest.raises(ValueError, match="batch_sizes must be a list of positive integers"):
        fps.resolve_batch_sizes(value, [1])


def test_device_batches_hand_out_every_image_in_order():
    x = images(10)
    batches = list(fps.device_batches(x, 4, "cpu"))
    assert [len(b) for b in batches] == [4, 4, 2]
    assert torch.equal(torch.cat(batches), x)
    assert sum(len(b) for b in fps.device_batches(x[:0], 4, "cpu")) == 0


def test_warmup_last_runs_the_smaller_last_batch_before_timing():
    model = Tiny()
    fps.model_only_fps(model, images(10), batch_size=4, device="cpu", warmup_batches=1,
                       warmup_last=True, measure_fps=measure_fps)
    assert model.calls == 2 + 3 and model.seen == 4 + 2 + 10
    model = Tiny()  # warmup_last=False: the old behaviour, the last shape left to the timing
    fps.model_only_fps(model, images(10), batch_size=4, device="cpu", warmup_batches=1,
                       warmup_last=False, measure_fps=measure_fps)
    assert model.calls == 1 + 3 and model.seen == 4 + 10


def gpu_record(runs, tf32=True):
    return {"environment": {"device": "cuda", "gpu": "GPU X"}, "image_size": 256,
            "test_images": 100, "report": {"fps": 50.0}, "tf32": {"cudnn_conv": tf32},
            "runs": runs}


def test_gpu_summary_reads_old_results_and_labels_their_fp32_rows_tf32():
    row = {"images": 100, "batch_size": 16, "seconds": 1.0, "fps": 100.0}
    old = gpu_record({
        "fp32": {"variant": "plain", "amp": None, "model_only": [row],
                 "end_to_end": {**row, "fps": 150.0, "batch_size": 256}},
        "bf16": {"variant": "plain", "amp": "bf16", "model_only": [row],
                 "end_to_end": {**row, "batch_size": 256}}})
    summary = fps_results.gpu_summary(old)
    assert summary["precision"].tolist() == ["TF32 (stored as fp32)", "bf16"]
    assert summary["warm_fps"].tolist() == [150.0, 100.0]
    assert summary["x_report_warm"].tolist() == [3.0, 2.0]
    assert summary["cold_fps"].isna().all()  # no cold path in old results
    assert fps_results.run_label(gpu_record(old["runs"], tf32=False), "fp32") == "fp32"


def test_gpu_summary_shows_cold_and_warm_of_new_results():
    row = {"images": 100, "batch_size": 256, "seconds": 1.0, "fps": 100.0}
    cold = {**row, "fps": 80.0, "decode_only_fps": 85.0, "cold_over_decode_only": 80 / 85}
    new = gpu_record({name: {"variant": "plain", "precision": name, "amp": None,
                             "model_only": [row], "warm": row, "cold": cold}
                      for name in ("tf32", "fp32")})
    summary = fps_results.gpu_summary(new)
    assert summary["precision"].tolist() == ["tf32", "fp32"]
    assert summary["cold_fps"].tolist() == [80.0, 80.0]
    assert summary["decode_only_fps"].tolist() == [85.0, 85.0]
    assert summary["x_report_cold"].tolist() == [1.6, 1.6]
    with pytest.raises(ValueError, match="path must be"):
        fps_results.run_path(new["runs"]["tf32"], "lukewarm")


def test_inference_variants_agree_and_unknown_names_are_refused():
    from course_utils.part_one.model import ReportCNN

    torch.manual_seed(0)
    model = ReportCNN(1, 3).eval()
    x = torch.rand(2, 1, 32, 32).contiguous(memory_format=torch.channels_last)
    plain = inference_variants.inference_variant(model, "plain", "cpu", channels_last=True)
    folded = inference_variants.inference_variant(model, "folded", "cpu", channels_last=True)
    with torch.no_grad():
        assert torch.allclose(folded(x), plain(x), atol=1e-4, rtol=1e-4)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    with pytest.raises(ValueError, match="variant must be one of"):
        inference_variants.inference_variant(model, "fastest", "cpu")


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
    timings = bench.conv_timings([3, 4], channels=1, batch=1, repeats=1, seed=0,
                                 conv_forward_loops=im2col.conv_forward_loops,
                                 conv_forward=im2col.conv_forward)
    assert list(timings.index) == [3, 4]
    assert list(timings.columns) == ["loops", "im2col", "torch conv2d", "loops / im2col",
                                     "im2col / torch"]
    assert (timings[["loops", "im2col", "torch conv2d"]] > 0).all().all()
    ratio = timings["loops"] / timings["im2col"]
    assert ratio.tolist() == timings["loops / im2col"].tolist()


def cold_row(decode_only_fps, fps, batch_size=8):
    return {"batch_size": batch_size, "workers": 2, "images": 90, "fps": fps,
            "decode_only_fps": decode_only_fps, "cold_over_decode_only": fps / decode_only_fps}


@pytest.mark.parametrize("decode, cold, model, says", [
    (100.0, 95.0, 500.0, "Decoding is the slower stage here; cold / decode-only = 0.950 reaches"),
    (100.0, 50.0, 500.0, "0.500 stays below the target 0.9: the model does not fully hide"),
    (500.0, 80.0, 100.0, "The model is the slower stage here, so cold / decode-only (0.160) is "
                         "not the measure; cold / model-only = 0.800 (below 1"),
    (500.0, 120.0, 100.0, "cold / model-only = 1.200 (not below 1: cold and model-only ran"),
])
def test_cold_verdict_follows_the_numbers(decode, cold, model, says):
    assert says in fps_results.cold_verdict(cold_row(decode, cold), model)


def test_end_to_end_table_pairs_the_paths_by_batch_size():
    model_only = [{"batch_size": 8, "fps": 100.0}]
    warm = [{"batch_size": 8, "images": 90, "fps": 90.0},
            {"batch_size": 32, "images": 90, "fps": 95.0}]
    table = fps_results.end_to_end_table(model_only, [cold_row(200.0, 50.0)], warm)
    assert table["batch_size"].tolist() == [8, 32]
    first = table.iloc[0]
    assert (first["cold_fps"], first["decode_only_fps"], first["warm_fps"]) == (50.0, 200.0, 90.0)
    assert first["cold/model-only"] == 0.5 and first["warm/model-only"] == 0.9
    assert table.iloc[1][["cold_fps", "model_only_fps"]].isna().all()  # not measured


def test_warm_gap_table_finds_the_unwarmed_last_batch():
    def run(variant, model_seconds, warmed=None):
        model = {"images": 10, "batch_size": 4, "seconds": model_seconds,
                 "fps": 10 / model_seconds}
        if warmed is not None:
            model["warmed_last"] = warmed
        return {"variant": variant, "amp": "bf16", "model_only": [model],
                "end_to_end": {"images": 10, "batch_size": 4, "seconds": 1.0, "fps": 10.0}}

    record = gpu_record({"bf16": run("plain", 1.25), "bf16 compiled": run("compiled", 0.8),
                         "new": run("plain", 0.9, warmed=True)})
    table = fps_results.warm_gap_table(record)
    assert table["last_batch"].tolist() == [2, 2, 2]  # 10 = 2 x 4 + 2
    assert table["last_shape_warmed_up"].tolist() == [False, True, True]
    assert table["warm/model-only"].tolist() == [1.25, 0.8, 0.9]
