"""Sentences that state a result some run of the course breaks: no markdown cell (and no
README line) may make them again.

A markdown cell cannot change with the run, so a sentence stating a measured or data-dependent
result is false for some dataset or parameter the notebook accepts. The audits (issue 18) found
these; each was rewritten as a print of the run's value or as a condition the next cell checks.
Each ``Claim`` keeps the sentence as it was, a pattern that finds it (or a close rewording), and
the run that breaks it. ``tests/test_markdown_claims.py`` fails when a pattern is found in a
notebook's markdown or the README; the other-datasets and other-parameters tests prove, on
their runs, that each ``proof`` still breaks the sentence (so the list holds no sentence that
is in fact always true).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass


def search(pattern: str, text: str) -> re.Match | None:
    """Case-insensitive, across line breaks (markdown wraps sentences anywhere)."""
    return re.search(pattern.replace(" ", r"\s+"), text, re.I | re.M)


@dataclass(frozen=True)
class Claim:
    """where: a notebook's name (its markdown cells) or "README.md"; sentence: the claim as it
    was written; pattern: finds it (spaces match any whitespace, case ignored); broken_by: the
    run that breaks it, in words; proof: (run label, predicate on that run's printed text that
    is True when the run breaks the sentence), for the runs the notebook tests make."""

    where: str
    sentence: str
    pattern: str
    broken_by: str
    proof: tuple[str, Callable[[str], bool]] | None = None


def _printed_flag(pattern: str, expected: str) -> Callable[[str], bool]:
    """True when the run printed ``pattern``'s group as ``expected`` (the sentence's opposite)."""
    def broken(text: str) -> bool:
        found = re.search(pattern, text)
        return bool(found) and found.group(1) == expected
    return broken


CLAIMS: list[Claim] = [
    # ---- 01: the data ------------------------------------------------------------------------
    Claim("01_data_exploration",
          "the counts below are `dataset_generator.SAMPLE_TRAIN_PER_CLASS` and "
          "`dataset_generator.SAMPLE_TEST_PER_CLASS` per class.",
          r"the counts below are `?(dataset_generator\.)?SAMPLE_TRAIN_PER_CLASS",
          "any data_dir: the digits run has 10 classes of its own counts",
          ("01_digits", lambda text: "not the built-in dataset:" in text)),
    Claim("01_data_exploration",
          "The texture covers a random part of the image, with random contrast and noise on a "
          "shaded background: the network has to find it.",
          r"The texture covers a random part of the image",
          "any data_dir: the digits are glyphs, not textures",
          ("01_digits", lambda text: "not the built-in dataset:" in text)),
    Claim("01_data_exploration",
          "Histograms per class show whether brightness alone could separate the classes (it "
          "should not: the classes differ by structure).",
          r"\(it should not: the classes differ by structure\)",
          "the mixed RGB dataset: one class is told apart by its brightness",
          ("01_mixed", _printed_flag(r"beats chance by more than [\d.]+: (yes)", "yes"))),
    Claim("01_data_exploration",
          "so every notebook runs in seconds on a laptop CPU",
          r"every notebook runs in seconds",
          "notebook 03's stored run trains for minutes on a 2-core CPU"),
    # ---- 02: the model -------------------------------------------------------------------------
    Claim("02_model_and_parameters",
          "pool2 brings every input size down to 54x54, so fc1 always sees 96 x 54 x 54 = "
          "279,936 inputs.",
          r"brings every input size down to 54x54",
          "-p image_size 64: pool2 gets 32x32 maps and repeats values (upsamples)",
          ("02_size_64", lambda text: "repeats values (it upsamples)" in text)),
    Claim("02_model_and_parameters",
          "fc1 holds 98% of the parameters but does well under 1% of the work",
          r"does well under 1% of the work",
          "-p image_size 64: fc1 does about 5% of the FLOPs",
          ("02_size_64", _printed_flag(r"at 64x64:[^\n]*fc1 under 1%: (\w+)", "False"))),
    Claim("02_model_and_parameters",
          "while the compute hardly changes (the convs do over 99% of the FLOPs)",
          r"\(the convs do over 99% of the FLOPs\)",
          "-p image_size 64: fc1 does about 5% of the FLOPs",
          ("02_size_64", _printed_flag(r"at 64x64:[^\n]*fc1 under 1%: (\w+)", "False"))),
    Claim("02_model_and_parameters",
          "The report's counts for the five tensors it names are right",
          r"counts for the five tensors it names are right",
          "nothing independent: they agree with a model built from the report's own counts"),
    Claim("02_model_and_parameters",
          "Either way it is a rate that points to a GPU",
          r"it is a rate that points to a GPU",
          "1.3 TFLOP/s in fp32 is within reach of a many-core CPU"),
    # ---- 03: training --------------------------------------------------------------------------
    Claim("03_training",
          "at `lr=1e-4` (about a minute on a 2-core CPU)",
          r"about a minute on a 2-core CPU",
          "the stored run trained for 101 s and took 212 s on a rerun"),
    Claim("03_training",
          "Decoding an 800x947 PNG and resizing it costs about as much as the model's forward "
          "pass at 64x64",
          r"costs about as much as the model's forward pass",
          "notebook 04's own output: decoding 6-9x cheaper"),
    Claim("03_training",
          "at the report's size lr 1e-2 stays at chance in the committed curves",
          r"at the report's size lr 1e-2 stays at chance",
          "the committed curves are at 64x64 on a CPU; no 256x256 run is committed"),
    Claim("README.md",
          "`lr=1e-4`, the smallest change that learns at the report's size",
          r"the smallest change that learns at the report's size",
          "never tested: no smaller change was tried, and no 256x256 run is committed"),
    Claim("03_training",
          "on its budget the report's 1e-2 blows the loss up",
          r"the report's 1e-2 blows the loss up",
          "the digits and mixed runs: lr 1e-2 had the best accuracy of the comparison"),
    Claim("03_training",
          "once it gets there each Adam step moves fc1's outputs as far as measured above",
          r"each Adam step moves fc1's outputs as far as measured above",
          "only the first step from fresh weights is measured"),
    # ---- 04: FPS -------------------------------------------------------------------------------
    Claim("04_fps_benchmark",
          "this machine's default device (well under a minute on a 2-core CPU)",
          r"well under a minute on a 2-core CPU",
          "66 s on the 2-core audit machine"),
    Claim("04_fps_benchmark",
          "so it should not come out ahead by more than the noise of a shared machine",
          r"should not come out ahead by more than the noise",
          "warm / model-only 1.112 and 1.051 on the two made-up datasets"),
    Claim("04_fps_benchmark",
          "- Throughput grows with the batch size until the device is busy",
          r"^- Throughput grows with the batch size until",
          "165 FPS at batch 8 fell to 124 at batch 64 on one run"),
    # ---- 05: the chain rule --------------------------------------------------------------------
    Claim("05_chain_rule",
          "What it leaves implicit: 1. Where g' is evaluated.",
          r"leaves implicit[^\n]*\n*[^\n]*Where \$?g'\$? is evaluated",
          "the report writes g'(w3 h) and f'(w1 x1 + w2 x2) explicitly"),
    Claim("05_chain_rule",
          "The report does not say which it means",
          r"report does not say which it means",
          "the report updates the weights with the gradients it has just computed"),
    # ---- 06: the worked example ----------------------------------------------------------------
    Claim("06_conv_backprop_by_hand",
          "Each equation alone allows thousands of grid points; together they allow exactly one.",
          r"thousands of (grid points|candidates)",
          "-p search_bound 1.0: 154 to 376 candidates per equation",
          ("06_bound_1", lambda text: 0 < min(candidates(text) or [0]) < 1000)),
    Claim("06_conv_backprop_by_hand",
          "The independent evidence is what the recovery never used: the conv output, the "
          "sigmoid delta, ...",
          r"what the recovery never used: the conv output",
          "the recovery reads the conv output and the sigmoid delta",
          ("06_bound_1", lambda text: "conv_output:" in text and "sigmoid_delta:" in text)),
    Claim("06_conv_backprop_by_hand",
          "All of the worked example's inputs follow from its printed results",
          r"All of the worked example's inputs follow from its printed results",
          "11 of the 25 pixels are not determined by the report",
          ("06_bound_1", lambda text: re.search(r"\b([1-9]\d*) not determined by the report",
                                                text) is not None)),
    Claim("06_conv_backprop_by_hand",
          "11 pixels are not determined by the report; no printed number depends on them",
          r"no printed number depends on them",
          "the conv output bounds them: only some joint draws reproduce it",
          ("06_bound_1", lambda text: free_pixel_draws(text)[0] < free_pixel_draws(text)[1])),
    Claim("README.md",
          "the other 11 pixels come from the public copy of the exercise, and no printed number "
          "depends on them",
          r"no printed number depends on them",
          "the conv output bounds them (82 of 200 joint draws reproduce it)"),
    Claim("06_conv_backprop_by_hand",
          "what the report calls the full convolution",
          r"what the report calls the full convolution",
          "the report never uses the phrase"),
    # ---- 07: im2col ----------------------------------------------------------------------------
    Claim("07_im2col_and_fold",
          "which PyTorch's direct convolution kernels avoid",
          r"PyTorch's direct convolution kernels avoid",
          "never shown; the stored ratios have numpy faster than conv2d"),
    Claim("07_im2col_and_fold",
          "One matrix multiply is orders of magnitude faster than loops",
          r"orders of magnitude faster than (the )?loops",
          "small timing_sizes: 6-7x",
          ("07_sizes", lambda text: 0 < min(loop_ratios(text) or [0]) < 100)),
]


# ---- what the proofs (and the tests of those runs) read from a run's printed text ---------------

def candidates(text: str) -> list[int]:
    """06's candidates per dL/dK equation ([] when not printed)."""
    found = re.search(r"each dL/dK equation alone: \(([\d, ]+)\)", text)
    return [int(n) for n in found.group(1).split(",")] if found else []


def free_pixel_draws(text: str) -> tuple[int, int]:
    """06's (joint draws that reproduce the conv output, draws) ((0, 0) when not printed)."""
    found = re.search(r"bounds the undetermined pixels: (\d+) of (\d+) joint draws", text)
    return (int(found.group(1)), int(found.group(2))) if found else (0, 0)


def loop_ratios(text: str) -> list[float]:
    """The "loops / im2col" column of 07's timing table (size, loops, im2col, torch, ratios);
    [] when not printed."""
    header = text.find("loops / im2col  im2col / torch")
    if header < 0:
        return []
    table = text[header:].split("\n\n")[0]
    rows = re.findall(r"^(\d+)\s+([\d.e+-]+)\s+([\d.e+-]+)\s+([\d.e+-]+)\s+([\d.e+-]+)\s+"
                      r"([\d.e+-]+)$", table, re.M)
    return [float(row[4]) for row in rows]


def made_again(where: str, text: str) -> list[Claim]:
    """The claims of ``where`` that ``text`` (its markdown, or the README) makes again."""
    return [claim for claim in CLAIMS if claim.where == where and search(claim.pattern, text)]


def unproved(run_label: str, printed: str) -> list[str]:
    """The sentences whose proof names ``run_label`` but which that run does not break."""
    return [claim.sentence for claim in CLAIMS
            if claim.proof and claim.proof[0] == run_label and not claim.proof[1](printed)]
