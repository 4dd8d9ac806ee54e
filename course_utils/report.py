"""Every number the report prints, each with where it comes from.

The report is "Neural Networks — Project" (Sharif University of Technology). Notebooks never
type these numbers: they import them from here, recompute them, and show both side by side
(see ``course_utils.checks``). Values are exactly as printed, including the report's mistakes;
what the report got wrong is shown by the notebooks, not corrected here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ReportValue:
    """One number (or table) printed in the report.

    key: short identifier used by the notebooks; value: as printed;
    source: where it is printed ("Part One, Question 1"); text: the report's own words.
    """

    key: str
    value: Any
    source: str
    text: str


_VALUES = [
    # ---- Part One: the model and its results -------------------------------------------
    # The report prints "800x947" only: width first, then height, is our reading (it states
    # neither the order nor the bit depth).
    ReportValue("image_width", 800, "Part One, Question 1", "The image resolution is 800x947."),
    ReportValue("image_height", 947, "Part One, Question 1", "The image resolution is 800x947."),
    ReportValue("resize_to", 256, "Part One, Question 1",
                "we transform and resize the images to 256x256"),
    ReportValue("num_classes", 6, "Part One, Table 1", "FC2: 6 units"),
    ReportValue("epochs", 10, "Part One, Model", "We make 10 epochs."),
    ReportValue("test_accuracy", 0.58, "Part One, Model",
                "on the test directory, we got 58 percent accuracy"),
    ReportValue("fps", 59.21, "Part One, Model", "we got 59.21 FPS"),
    ReportValue("fps_test_images", 6588, "Part One, Model",
                "we run it on the test dataset, which contains 6588 images"),
    ReportValue("params_1_channel", 36_492_550, "Part One, Question 1",
                "1-channel parameters:36492550"),
    ReportValue("params_3_channel", 36_498_950, "Part One, Question 1",
                "3-channel parameters:36498950"),
    ReportValue("params_total_q4", 36_492_550, "Part One, Question 4",
                "total parameters:36492550"),
    ReportValue("total_feature_maps", 768, "Part One, Question 1",
                "for 1-channel or 3-channel: total feature map = 768"),
    ReportValue("first_conv_params_factor", 3, "Part One, Question 1",
                "The number of parameters in the first convolutional layer will triple."),
    ReportValue(
        "table1",
        (
            ("Conv1", "128 feature maps"), ("BatchNorm1", "128 feature maps"),
            ("AvgPool1", "128 feature maps"), ("Conv2", "128 feature maps"),
            ("BatchNorm2", "128 feature maps"), ("Conv3", "128 feature maps"),
            ("BatchNorm3", "128 feature maps"), ("Conv4_1", "96 feature maps"),
            ("BatchNorm4_1", "96 feature maps"), ("Conv4_2", "96 feature maps"),
            ("BatchNorm4_2", "96 feature maps"), ("Conv5_1", "96 feature maps"),
            ("BatchNorm5_1", "96 feature maps"), ("Conv5_2", "96 feature maps"),
            ("BatchNorm5_2", "96 feature maps"), ("AvgPool2", "96 feature maps"),
            ("Dropout", "96 feature maps"), ("FC1", "128 units"),
            ("Dropout_FC1", "128 units"), ("FC2", "6 units"),
        ),
        "Part One, Table 1", "Table 1: CNN Architecture (Layer, Output Size)",
    ),
    ReportValue(
        "largest_tensors_q4",
        (("conv2.weight", 147_456), ("conv3.weight", 147_456), ("conv4_1.weight", 110_592),
         ("conv5_1.weight", 82_944), ("conv5_2.weight", 82_944)),
        "Part One, Question 4", "The layers with the highest number of parameters are: ...",
    ),
    ReportValue("init_claim_q3", "Xavier initialization or He initialization",
                "Part One, Question 3",
                "This initial assignment is based on standard methods such as Xavier "
                "initialization or He initialization, which are applied by default in PyTorch."),
    ReportValue("loss", "CrossEntropyLoss", "Part One, Question 5",
                "The loss function used is the CrossEntropyLoss from PyTorch"),
    ReportValue("optimizer", "Adam", "Part One, Question 6",
                "The optimizer used is the Adam optimizer from PyTorch"),
    ReportValue("lr", 1e-2, "Part One, Question 6", "with a learning rate of 1e-2"),
    ReportValue("weight_decay", 1e-4, "Part One, Question 6", "and a weight decay of 1e-4"),
    # ---- Part Two: the worked example (conv -> max-pool -> sigmoid -> FC) ---------------
    ReportValue(
        "conv_output",
        ((0.25, -0.16, 0.27, -0.34), (0.11, 0.31, -0.30, 0.01),
         (-0.22, 0.61, -0.09, -0.28), (-0.33, 0.48, -0.27, 0.19)),
        "Part Two, Convolution", "Convolved Output (4x4, printed to 2 decimals)",
    ),
    ReportValue("sigmoid_output", ((0.58, 0.57), (0.65, 0.55)), "Part Two, Convolution",
                "Output after applying sigmoid (2x2, printed to 2 decimals)"),
    ReportValue("fc_delta_input", (0.1495, 0.28, 0.2055, -0.2755), "Part Two, Result",
                "Fully connected delta input"),
    ReportValue(
        "fc_delta_weights",
        ((0.14417249, 0.14147853, 0.16209922, 0.13678985),
         (-0.0865035, -0.08488712, -0.09725953, -0.08207391)),
        "Part Two, Result", "Fully connected delta weights",
    ),
    ReportValue("fc_delta_biases", (0.25, -0.15), "Part Two, Result",
                "Fully connected delta biases"),
    ReportValue("sigmoid_delta", ((0.03649574, 0.06878349), (0.04684955, -0.06826229)),
                "Part Two, Result", "Sigmoid delta"),
    ReportValue(
        # Garbled in print: the second row has five entries. Kept exactly as printed.
        "maxpool_delta_as_printed",
        ((0, 0, 0.06878349, 0), (0, 0.03649574, 0.04684955, 0, 0),
         (0, 0.04684955, 0, 0), (0, 0, 0, -0.06826229)),
        "Part Two, Result", "Max-pooling delta (4x4; printed with a 5-entry second row)",
    ),
    ReportValue(
        # The last row lost an entry in print (four entries for a 5x5 matrix).
        "conv_delta_input_as_printed",
        ((0, 0, -0.00894185, 0.01031752, 0), (0, -0.00474445, -0.02960522, 0.04264576, 0),
         (0, -0.02470327, 0.02965479, 0, 0), (0, -0.02389327, 0.02904672, 0.0088741, -0.01023934),
         (0, 0, 0.03481377, -0.04232262)),
        "Part Two, Result", "Convolution delta input (5x5; printed with a 4-entry last row)",
    ),
    ReportValue("conv_delta_kernel", None, "Part Two, Result",
                "Convolution delta kernel: (heading printed, matrix missing)"),
    ReportValue("updated_kernel", ((-0.15237157, 0.10283387), (-0.51541346, 0.58574914)),
                "Part Two, Result", "Updated Convolution Kernel"),
    ReportValue(
        "updated_fc_weights",
        ((0.53791375, 0.74926073, 0.87895039, -1.06839493),
         (0.06325175, -0.45755644, 0.27862977, 0.21103696)),
        "Part Two, Result", "Updated Fully Connected Layer Weights",
    ),
    ReportValue("updated_fc_biases", (-0.125, 0.075), "Part Two, Result",
                "Updated Fully Connected Layer Biases"),
    # ---- Part Two: unfold (im2col) --------------------------------------------------------
    ReportValue("im2col_example_rows", 9, "Part Two, Unfold (im2col)",
                "a 3x3 kernel sliding over a 5x5 image with no padding and a stride of 1 ... "
                "9 rows (flattened 3x3 kernel)"),
    ReportValue("im2col_example_cols", 9, "Part Two, Unfold (im2col)",
                "... and 9 columns (number of positions the kernel fits into)"),
]

REPORT: dict[str, ReportValue] = {v.key: v for v in _VALUES}


def value(key: str) -> Any:
    """The report's printed value for ``key`` (a KeyError lists the known keys)."""
    try:
        return REPORT[key].value
    except KeyError:
        raise KeyError(f"unknown report key {key!r}; known keys: {sorted(REPORT)}") from None
