"""Torsos, Q-heads and the actor-critic network shared by the agents.

The Nature CNN is laid out exactly like Dopamine's JAX ``NatureDQNNetwork`` (SAME padding, so the
flattened feature map is 11x11x64 = 7744, not the 3136 of VALID padding), which lets Dopamine
weights load one to one (see ``anew.reincarnation``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from anew.agents.impala import ImpalaCNN


class NatureCNN(nn.Module):
    """Mnih et al. (2015) torso; uint8 (B, C, 84, 84) in, 512 features out.

    ``same=True`` (the default) is Dopamine's SAME padding (11x11x64 = 7744 conv features), so Dopamine's
    weights load one to one; ``same=False`` is the Nature paper's VALID padding (7x7x64 = 3136, the network
    Stable-Baselines3 and CleanRL use, about 19 instead of 32 MFLOP per forward). ``features=None`` stops after
    the convs (no ``dense``): Dopamine's FullRainbowNetwork puts its 512-unit layer in the head.
    """

    # (left, right, top, bottom) paddings equal to flax/TF 'SAME' for an 84x84 input.
    PADDINGS = ((2, 2, 2, 2), (1, 2, 1, 2), (1, 1, 1, 1))

    def __init__(self, in_channels: int = 4, features: int | None = 512, same: bool = True):
        super().__init__()
        self.conv0 = nn.Conv2d(in_channels, 32, 8, stride=4)
        self.conv1 = nn.Conv2d(32, 64, 4, stride=2)
        self.conv2 = nn.Conv2d(64, 64, 3, stride=1)
        self.paddings = self.PADDINGS if same else ((0, 0, 0, 0),) * 3
        side = 11 if same else 7
        self.dense = nn.Linear(64 * side * side, features) if features is not None else None
        self.out_features = features if features is not None else 64 * side * side

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        x = obs.float() / 255.0  # Dopamine divides inside the network
        for conv, pad in zip((self.conv0, self.conv1, self.conv2), self.paddings):
            x = F.relu(conv(F.pad(x, pad) if any(pad) else x))
        x = x.flatten(1)
        return F.relu(self.dense(x)) if self.dense is not None else x


class MinAtarCNN(nn.Module):
    """The MinAtar paper's torso: one 3x3 conv with 16 channels, then a dense layer of 128
    (``features=None``: the conv only)."""

    def __init__(self, in_channels: int, height: int = 10, width: int = 10, features: int | None = 128):
        super().__init__()
        conv_features = 16 * (height - 2) * (width - 2)
        self.conv = nn.Conv2d(in_channels, 16, 3, stride=1)
        self.dense = nn.Linear(conv_features, features) if features is not None else None
        self.out_features = features if features is not None else conv_features

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.conv(obs.float())).flatten(1)
        return F.relu(self.dense(x)) if self.dense is not None else x


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


TORSOS = ("nature", "nature-valid", "minatar", "impala", "mlp")


def make_torso(
    kind: str, obs_shape: Sequence[int], hidden: Sequence[int] = (256, 256), *, final_dense: bool = True
) -> nn.Module:
    """Build a torso by name for an observation shape (channels first for images).

    ``final_dense=False`` leaves out the torso's last dense layer (the CNNs' feature layer, the MLP's
    last hidden layer) so a head can own it, e.g. as a noisy layer (Dopamine's FullRainbowNetwork).
    """
    if kind in ("nature", "nature-valid"):
        return NatureCNN(
            in_channels=obs_shape[0], features=512 if final_dense else None, same=kind == "nature"
        )
    if kind == "minatar":
        return MinAtarCNN(obs_shape[0], obs_shape[1], obs_shape[2], features=128 if final_dense else None)
    if kind == "impala":
        # Atari frames are 0..255; MinAtar-style grids are already 0/1.
        scale = 255.0 if tuple(obs_shape[1:]) == (84, 84) else 1.0
        torso = ImpalaCNN(obs_shape[0], obs_shape[1], obs_shape[2], input_scale=scale)
        if not final_dense:
            # ImpalaCNN computes relu(dense(relu(x))); with an identity dense that is relu(x), the conv output.
            torso.dense = nn.Identity()
            torso.out_features = torso.conv_features
        return torso
    if kind == "mlp":
        in_features = 1
        for dim in obs_shape:
            in_features *= int(dim)
        return MLP(in_features, hidden if final_dense else tuple(hidden)[:-1])
    raise ValueError(f"unknown torso {kind!r}: choose one of {', '.join(TORSOS)}")


def default_torso(obs_shape: Sequence[int]) -> str:
    """Nature CNN for 84x84 image stacks, the MinAtar conv for 10x10 grids, an MLP otherwise."""
    if len(obs_shape) == 3 and tuple(obs_shape[1:]) == (84, 84):
        return "nature"
    if len(obs_shape) == 3 and tuple(obs_shape[1:]) == (10, 10):
        return "minatar"
    return "mlp"


# ---------------------------------------------------------------------- actor-critic (PPO and its kin)
def layer_init(layer: nn.Module, std: float, generator: torch.Generator) -> nn.Module:
    """Orthogonal weights with gain ``std`` and zero biases (CleanRL's ``layer_init``), from ``generator``."""
    nn.init.orthogonal_(layer.weight, std, generator=generator)
    nn.init.zeros_(layer.bias)
    return layer


def mlp(sizes: list[int], activation: str, out_std: float, generator: torch.Generator) -> nn.Sequential:
    """Orthogonally initialised MLP: gain sqrt(2) for hidden layers, ``out_std`` for the last (CleanRL)."""
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        last = i == len(sizes) - 2
        gain = out_std if last else math.sqrt(2)
        layers.append(layer_init(nn.Linear(sizes[i], sizes[i + 1]), gain, generator))
        if not last:
            layers.append(nn.Tanh() if activation == "tanh" else nn.ReLU())
    return nn.Sequential(*layers)


class ActorCritic(nn.Module):
    """Policy head (logits, or a Gaussian mean with a state-independent ``log_std``) and value head.

    Vector observations get separate actor and critic MLPs (``hidden`` widths, ``activation``); images
    share one CNN torso (``torso``: a ``make_torso`` name, or "auto" for ``default_torso``). Weights are
    drawn from ``generator`` alone, CleanRL's initialisation.
    """

    def __init__(
        self,
        obs_shape: tuple[int, ...],
        outputs: int,
        continuous: bool,
        generator: torch.Generator,
        torso: str = "auto",
        hidden: Sequence[int] = (64, 64),
        activation: str = "tanh",
        init_log_std: float = 0.0,
    ):
        super().__init__()
        kind = default_torso(obs_shape) if torso == "auto" else torso
        if kind == "mlp":
            self.torso: nn.Module = nn.Flatten()
            width = int(np.prod(obs_shape))
            self.actor = mlp([width, *hidden, outputs], activation, 0.01, generator)
            self.critic = mlp([width, *hidden, 1], activation, 1.0, generator)
        else:
            self.torso = make_torso(kind, obs_shape)
            for module in self.torso.modules():
                if isinstance(module, (nn.Linear, nn.Conv2d)):
                    layer_init(module, math.sqrt(2), generator)
            self.actor = layer_init(nn.Linear(self.torso.out_features, outputs), 0.01, generator)
            self.critic = layer_init(nn.Linear(self.torso.out_features, 1), 1.0, generator)
        self.log_std = nn.Parameter(torch.full((outputs,), init_log_std)) if continuous else None

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits or Gaussian mean [B, outputs], value [B])."""
        features = self.torso(obs)
        return self.actor(features), self.critic(features).squeeze(-1)

    def policy(self, obs: torch.Tensor) -> torch.Tensor:
        """The policy head's output alone (logits or Gaussian mean)."""
        return self.actor(self.torso(obs))

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        """V(obs) [B]."""
        return self.critic(self.torso(obs)).squeeze(-1)
