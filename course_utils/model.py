"""The report's CNN (Part One, Table 1).

The report gives layer names and feature-map counts but no kernel sizes; its parameter
counts pin them down (notebook 02 derives this):
- conv1 is 5x5: going from 1 to 3 input channels adds 36,498,950 - 36,492,550 = 6,400
  = 2 x 128 x 5 x 5 weights;
- conv2 ... conv5_2 are 3x3 (conv2.weight = 128 x 128 x 3 x 3 = 147,456, as question 4 says);
- fc1 takes 96 x 54 x 54 = 279,936 inputs, so pool2 leaves 54x54 maps. An adaptive average
  pool to 54x54 does that for any input size, so the parameter count does not depend on the
  image size and CPU runs can use small images (64x64) with the very same model.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

#: Spatial size after pool2; fixed by the report's parameter count (fc1 has 96*54*54 inputs).
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


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Total number of parameters (all, or only those with requires_grad)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
