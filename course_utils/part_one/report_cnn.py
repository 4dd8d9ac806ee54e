"""02 · The report's CNN: layers, parameters, FLOPs and initialisation.

GENERATED from the cells marked ``#| export`` in notebooks/02_model_and_parameters.ipynb by
``python -m course_utils.instructor.grading export`` (``make export``): edit the notebook, not
this file.
``tests/test_grading_export.py`` fails when this file is stale.
"""

# Given code: the same class as course_utils.part_one.model.ReportCNN.
import torch
import torch.nn.functional as F
from torch import nn

#: Spatial size after pool2: our square reading of the report's parameter count (with a 3x3
#: conv4_2, fc1 has 96 x 2,916 inputs; 2,916 = 54 x 54, see ``pool2_map_candidates``).
POOL2_SIZE = 54
#: Smallest square input accepted (pool1 halves it; below this the maps are mostly padding).
MIN_IMAGE_SIZE = 32


class ReportCNN(nn.Module):
    """The report's classifier: 7 conv layers with batch norm, two average pools, two FCs.

    in_channels: 1 (grayscale, the report's) or 3 (grayscale replicated, question 1);
    num_classes: outputs of fc2 (the report's dataset has 6); dropout: probability for both
    dropout layers (the report does not give it; 0.5 is PyTorch's default).
    Input x: (N, in_channels, H, W) with H, W >= MIN_IMAGE_SIZE. Output: (N, num_classes) logits.
    ReLU follows every batch norm and fc1 (not listed in Table 1: it has no parameters).
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 6, dropout: float = 0.5) -> None:
        super().__init__()
        if in_channels < 1:
            raise ValueError(f"in_channels must be >= 1 (1 grayscale, 3 RGB), got {in_channels}")
        if num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {num_classes}")
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.conv1 = nn.Conv2d(in_channels, 128, kernel_size=5, padding=2)
        self.bn1 = nn.BatchNorm2d(128)
        self.pool1 = nn.AvgPool2d(kernel_size=2)
        self.conv2 = nn.Conv2d(128, 128, kernel_size=3, padding=1)
        self.bn2 = nn.BatchNorm2d(128)
        self.conv3 = nn.Conv2d(128, 128, kernel_size=3, padding=1)
        self.bn3 = nn.BatchNorm2d(128)
        self.conv4_1 = nn.Conv2d(128, 96, kernel_size=3, padding=1)
        self.bn4_1 = nn.BatchNorm2d(96)
        self.conv4_2 = nn.Conv2d(96, 96, kernel_size=3, padding=1)
        self.bn4_2 = nn.BatchNorm2d(96)
        self.conv5_1 = nn.Conv2d(96, 96, kernel_size=3, padding=1)
        self.bn5_1 = nn.BatchNorm2d(96)
        self.conv5_2 = nn.Conv2d(96, 96, kernel_size=3, padding=1)
        self.bn5_2 = nn.BatchNorm2d(96)
        self.pool2 = nn.AdaptiveAvgPool2d(POOL2_SIZE)
        self.dropout = nn.Dropout(dropout)
        self.fc1 = nn.Linear(96 * POOL2_SIZE * POOL2_SIZE, 128)
        self.dropout_fc1 = nn.Dropout(dropout)
        self.fc2 = nn.Linear(128, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"expected input of shape (N, {self.in_channels}, H, W), got {tuple(x.shape)}; "
                "build the model with in_channels matching the data")
        if min(x.shape[-2:]) < MIN_IMAGE_SIZE:
            raise ValueError(f"input {tuple(x.shape[-2:])} is smaller than the model accepts "
                             f"({MIN_IMAGE_SIZE}x{MIN_IMAGE_SIZE}); use a larger image_size")
        x = F.relu(self.bn1(self.conv1(x)), inplace=True)
        x = self.pool1(x)
        for conv, bn in ((self.conv2, self.bn2), (self.conv3, self.bn3),
                         (self.conv4_1, self.bn4_1), (self.conv4_2, self.bn4_2),
                         (self.conv5_1, self.bn5_1), (self.conv5_2, self.bn5_2)):
            x = F.relu(bn(conv(x)), inplace=True)
        x = self.dropout(self.pool2(x))
        x = F.relu(self.fc1(torch.flatten(x, 1)), inplace=True)
        return self.fc2(self.dropout_fc1(x))
