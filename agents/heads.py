"""Q-heads with Rainbow's switches: distributional atoms, dueling streams, noisy layers.

A head maps torso features (B, F) to logits (B, A, K) with K = ``num_atoms`` (K = 1 for plain
Q-learning: the logits are the Q-values). :func:`anew.agents.distributional.q_from_logits` turns
logits into Q-values either way.

Parameter layout, chosen so Dopamine's JAX networks map one to one (kernels transposed):

- ``hidden.<2i>``: optional hidden layers (ReLU after each) shared by both streams. Dopamine's
  FullRainbowNetwork has one, of 512 units, on top of the *conv* features (``NoisyNetwork_0`` or
  ``Dense_0``); with a torso that already ends in a dense layer (``networks.NatureCNN``) use none.
- ``out``: ``Linear(F, A*K)`` reshaped action-major to (A, K) (``Dense_1`` of RainbowNetwork /
  ``NoisyNetwork_1``). With ``dueling`` it is the advantage stream.
- ``value``: ``Linear(F, K)``, the dueling value stream (``NoisyNetwork_2``); absent otherwise.

So without dueling, noise or hidden layers the head is exactly one ``Linear(F, A*K)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from anew.agents.distributional import q_from_logits
from anew.agents.noisy import NoisyLinear, reset_noise


class QHead(nn.Module):
    """Features (B, F) -> logits (B, A, K); see the module docstring for the layout."""

    def __init__(
        self,
        in_features: int,
        num_actions: int,
        num_atoms: int = 1,
        *,
        dueling: bool = False,
        noisy: bool = False,
        hidden: Sequence[int] = (),
        sigma0: float = 0.5,
    ):
        super().__init__()
        if num_actions < 1 or num_atoms < 1:
            raise ValueError(f"need num_actions >= 1 and num_atoms >= 1, got {num_actions}, {num_atoms}")
        self.num_actions = num_actions
        self.num_atoms = num_atoms
        self.dueling = dueling
        self.noisy = noisy

        def linear(fan_in: int, fan_out: int) -> nn.Module:
            return NoisyLinear(fan_in, fan_out, sigma0) if noisy else nn.Linear(fan_in, fan_out)

        layers: list[nn.Module] = []
        for width in hidden:
            layers += [linear(in_features, width), nn.ReLU()]
            in_features = width
        self.hidden = nn.Sequential(*layers)
        self.out = linear(in_features, num_actions * num_atoms)
        self.value = linear(in_features, num_atoms) if dueling else None
        self.out_features = in_features  # width feeding the output layers (handy for adapters)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        x = self.hidden(features)
        logits = self.out(x).view(-1, self.num_actions, self.num_atoms)
        if self.value is not None:
            # Wang et al. (2016) eq. 9, applied to logits per atom as in Dopamine's FullRainbowNetwork.
            value = self.value(x).view(-1, 1, self.num_atoms)
            logits = value + logits - logits.mean(dim=1, keepdim=True)
        return logits

    def reset_noise(self, generator: torch.Generator | None = None) -> None:
        reset_noise(self, generator)


class RainbowNetwork(nn.Module):
    """A torso and a :class:`QHead`, with ``QNetwork``'s interface: ``logits(obs)`` -> (B, A, K) and
    ``forward(obs)`` -> Q-values (B, A).

    With ``support`` (K atoms) the Q-values are expectations under softmax(logits); without it the
    head must have K = 1. The support is a buffer, so it moves with ``.to(device)``.
    """

    def __init__(self, torso: nn.Module, head: QHead, support: torch.Tensor | None = None):
        super().__init__()
        if support is not None and support.shape != (head.num_atoms,):
            raise ValueError(f"support has shape {tuple(support.shape)}, the head has {head.num_atoms} atoms")
        if support is None and head.num_atoms != 1:
            raise ValueError(f"a head with {head.num_atoms} atoms needs a support")
        self.torso = torso
        self.head = head
        self.num_actions = head.num_actions
        self.num_atoms = head.num_atoms
        self.register_buffer("support", support.clone() if support is not None else None)

    def logits(self, obs: torch.Tensor) -> torch.Tensor:
        return self.head(self.torso(obs))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return q_from_logits(self.logits(obs), self.support)

    def reset_noise(self, generator: torch.Generator | None = None) -> None:
        """Resample every noisy layer (torso included, if it has any)."""
        reset_noise(self, generator)
