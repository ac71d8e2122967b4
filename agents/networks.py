"""Torsos and Q-heads shared by the value-based agents.

The Nature CNN is laid out exactly like Dopamine's JAX ``NatureDQNNetwork`` (SAME padding, so the
flattened feature map is 11x11x64 = 7744, not the 3136 of VALID padding), which lets Dopamine
weights load one to one (see ``anew.reincarnation``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


class NatureCNN(nn.Module):
    """Mnih et al. (2015) torso with Dopamine's SAME padding; uint8 (B, C, 84, 84) in, 512 features out."""

    # (left, right, top, bottom) paddings equal to flax/TF 'SAME' for an 84x84 input.
    PADDINGS = ((2, 2, 2, 2), (1, 2, 1, 2), (1, 1, 1, 1))

    def __init__(self, in_channels: int = 4, features: int = 512):
        super().__init__()
        self.conv0 = nn.Conv2d(in_channels, 32, 8, stride=4)
        self.conv1 = nn.Conv2d(32, 64, 4, stride=2)
        self.conv2 = nn.Conv2d(64, 64, 3, stride=1)
        self.dense = nn.Linear(64 * 11 * 11, features)
        self.out_features = features

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        x = obs.float() / 255.0  # Dopamine divides inside the network
        for conv, pad in zip((self.conv0, self.conv1, self.conv2), self.PADDINGS):
            x = F.relu(conv(F.pad(x, pad)))
        return F.relu(self.dense(x.flatten(1)))


class MinAtarCNN(nn.Module):
    """The MinAtar paper's torso: one 3x3 conv with 16 channels, then a dense layer of 128."""

    def __init__(self, in_channels: int, height: int = 10, width: int = 10, features: int = 128):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, 16, 3, stride=1)
        self.dense = nn.Linear(16 * (height - 2) * (width - 2), features)
        self.out_features = features

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.conv(obs.float()))
        return F.relu(self.dense(x.flatten(1)))


class MLP(nn.Module):
    """Fully connected torso for vector observations (flattened)."""

    def __init__(self, in_features: int, hidden: Sequence[int] = (256, 256)):
        super().__init__()
        layers: list[nn.Module] = []
        for width in hidden:
            layers += [nn.Linear(in_features, width), nn.ReLU()]
            in_features = width
        self.body = nn.Sequential(*layers)
        self.out_features = in_features

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.body(obs.float().flatten(1))


class QNetwork(nn.Module):
    """A torso followed by a linear head with one output per action (times atoms, if distributional).

    ``forward`` returns Q-values (B, A); ``logits`` returns the raw head output reshaped action-major
    to (B, A, atoms), which is Dopamine's RainbowNetwork layout.
    """

    def __init__(self, torso: nn.Module, num_actions: int, num_atoms: int = 1):
        super().__init__()
        self.torso = torso
        self.num_actions = num_actions
        self.num_atoms = num_atoms
        self.head = nn.Linear(torso.out_features, num_actions * num_atoms)

    def logits(self, obs: torch.Tensor) -> torch.Tensor:
        return self.head(self.torso(obs)).view(-1, self.num_actions, self.num_atoms)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.head(self.torso(obs))


def make_torso(kind: str, obs_shape: Sequence[int], hidden: Sequence[int] = (256, 256)) -> nn.Module:
    """Build a torso by name for an observation shape (channels first for images)."""
    if kind == "nature":
        return NatureCNN(in_channels=obs_shape[0])
    if kind == "minatar":
        return MinAtarCNN(in_channels=obs_shape[0], height=obs_shape[1], width=obs_shape[2])
    if kind == "mlp":
        in_features = 1
        for dim in obs_shape:
            in_features *= int(dim)
        return MLP(in_features, hidden)
    raise ValueError(f"unknown torso {kind!r}: choose one of 'nature', 'minatar', 'mlp'")


def default_torso(obs_shape: Sequence[int]) -> str:
    """Nature CNN for 84x84 image stacks, the MinAtar conv for 10x10 grids, an MLP otherwise."""
    if len(obs_shape) == 3 and tuple(obs_shape[1:]) == (84, 84):
        return "nature"
    if len(obs_shape) == 3 and tuple(obs_shape[1:]) == (10, 10):
        return "minatar"
    return "mlp"
