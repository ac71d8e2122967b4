"""The IMPALA ResNet torso (Espeholt et al., 2018) as reincarnating_rl builds it.

Layout of ``rrl:impala_networks.py`` ``ImpalaNetworkWithRepresentations`` (stack sizes (16, 32, 32),
two residual blocks per stack):

    for each stack of C channels:
        conv3x3(C) -> maxpool 3x3 stride 2 (SAME) -> 2 x [x + conv3x3(relu(conv3x3(relu(x))))]
    relu -> flatten -> dense(features) -> relu

Padding is TF/flax 'SAME' throughout. For the stride-2 pool on an even input that pads only at
the bottom/right (84 -> 42 pads (0, 1)), which PyTorch's symmetric ``padding=1`` does not reproduce,
so the pool pads explicitly with -inf. reincarnating_rl's dense layer has 512 units (Espeholt et al.
and CleanRL use 256): ``features`` chooses. Initialisation follows flax's: xavier-uniform for each
stack's first conv and the dense layer, lecun-normal (truncated) for the residual convs, zero biases.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """(before, after) padding that TF/flax 'SAME' applies to a dimension of length ``size``."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _lecun_normal_(weight: torch.Tensor) -> None:
    fan_in = weight[0].numel()
    # flax's truncated normal divides by the std of a unit normal truncated to [-2, 2].
    std = math.sqrt(1.0 / fan_in) / 0.87962566103423978
    nn.init.trunc_normal_(weight, std=std, a=-2 * std, b=2 * std)


class ResidualBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv0 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        for conv in (self.conv0, self.conv1):
            _lecun_normal_(conv.weight)
            nn.init.zeros_(conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv1(F.relu(self.conv0(F.relu(x))))


class ImpalaStack(nn.Module):
    """conv3x3 -> SAME max-pool 3x3 stride 2 -> residual blocks."""

    def __init__(self, in_channels: int, channels: int, num_blocks: int = 2):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, channels, 3, padding=1)
        nn.init.xavier_uniform_(self.conv.weight)
        nn.init.zeros_(self.conv.bias)
        self.blocks = nn.Sequential(*(ResidualBlock(channels) for _ in range(num_blocks)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        top, bottom = same_padding(x.shape[-2], 3, 2)
        left, right = same_padding(x.shape[-1], 3, 2)
        x = F.max_pool2d(F.pad(x, (left, right, top, bottom), value=-math.inf), 3, stride=2)
        return self.blocks(x)


class ImpalaCNN(nn.Module):
    """IMPALA ResNet torso; uint8 (B, C, H, W) in, ``out_features`` features out.

    ``input_scale`` divides the input (255 for Atari frames; use 1 for 0/1 grids such as MinAtar).
    """

    def __init__(
        self,
        in_channels: int = 4,
        height: int = 84,
        width: int = 84,
        channels: Sequence[int] = (16, 32, 32),
        num_blocks: int = 2,
        features: int = 512,
        input_scale: float = 255.0,
    ):
        super().__init__()
        stacks = []
        for out_channels in channels:
            stacks.append(ImpalaStack(in_channels, out_channels, num_blocks))
            in_channels = out_channels
            height, width = -(-height // 2), -(-width // 2)  # SAME pooling halves, rounding up
        self.stacks = nn.Sequential(*stacks)
        self.conv_features = in_channels * height * width
        self.dense = nn.Linear(self.conv_features, features)
        nn.init.xavier_uniform_(self.dense.weight)
        nn.init.zeros_(self.dense.bias)
        self.input_scale = input_scale
        self.out_features = features

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        x = self.stacks(obs.float() / self.input_scale)
        return F.relu(self.dense(F.relu(x).flatten(1)))
