"""The policy-dynamics value function W(s0, z_d, z_pi) = z_pi^T A(s0, z_d) z_pi and its maximiser.

A = M M^T is positive semi-definite, so W >= 0 (returns are normalised to [0, 1] before fitting) and,
over unit-norm policy embeddings, W is maximised by the top eigenvector of A, up to its sign: both signs
give the same W, and PD-VF decodes and rolls out both to pick one (reference ``pdvf_networks.py``,
``eval_pdvf.py``). M comes from [s0, z_d] through Linear-ReLU-Linear-tanh-Linear (hidden 128), reshaped
to d_pi x d_pi. The reference's unused ``lin_head`` / ``diag_head`` and two unused layers are left out.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class PDVFNetwork(nn.Module):
    """W(s0, z_d, z_pi) = z_pi^T A(s0, z_d) z_pi with A = M M^T (positive semi-definite)."""

    def __init__(
        self,
        state_size: int,
        dynamics_size: int,
        policy_size: int,
        hidden: int = 128,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        self.policy_size = policy_size
        self.fc1 = nn.Linear(state_size + dynamics_size, hidden)
        self.fc2 = nn.Linear(hidden, hidden)
        self.matrix_head = nn.Linear(hidden, policy_size * policy_size)
        # The reference's init: orthogonal weights, zero biases, ReLU gain on the two hidden layers.
        for layer, gain in ((self.fc1, math.sqrt(2)), (self.fc2, math.sqrt(2)), (self.matrix_head, 1.0)):
            nn.init.orthogonal_(layer.weight, gain, generator=generator)
            nn.init.zeros_(layer.bias)

    def matrix(self, initial_states: torch.Tensor, dynamics_embeddings: torch.Tensor) -> torch.Tensor:
        """A(s0, z_d) = M M^T, [B, d_pi, d_pi]."""
        hidden = torch.tanh(
            self.fc2(F.relu(self.fc1(torch.cat([initial_states, dynamics_embeddings], dim=-1))))
        )
        factor = self.matrix_head(hidden).view(-1, self.policy_size, self.policy_size)
        return factor @ factor.transpose(1, 2)

    def forward(
        self, initial_states: torch.Tensor, dynamics_embeddings: torch.Tensor, policy_embeddings: torch.Tensor
    ) -> torch.Tensor:
        """Predicted (normalised) returns [B]."""
        return quadratic_value(self.matrix(initial_states, dynamics_embeddings), policy_embeddings)


def quadratic_value(matrices: torch.Tensor, policy_embeddings: torch.Tensor) -> torch.Tensor:
    """z^T A z for a batch: [B, d, d], [B, d] -> [B]."""
    return torch.einsum("bi,bij,bj->b", policy_embeddings, matrices, policy_embeddings)


def optimal_policy_embedding(matrices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(u, -u): the unit top eigenvector(s) of symmetric PSD A [d, d] or [B, d, d], both signs.

    u maximises z^T A z over unit vectors z. The sign eigh returns is arbitrary; we fix it so u's
    largest-magnitude component is positive, which makes the pair's order reproducible.
    """
    _, vectors = torch.linalg.eigh(matrices)  # eigenvalues ascending: the last column is the top one
    top = vectors[..., -1]
    largest = top.gather(-1, top.abs().argmax(dim=-1, keepdim=True))
    top = top * torch.where(largest < 0, -1.0, 1.0).to(top.dtype)
    return top, -top


def value_loss(predicted: torch.Tensor, returns: torch.Tensor) -> torch.Tensor:
    """Mean squared error between W and the (normalised) returns (the reference's ``MSELoss()``)."""
    return F.mse_loss(predicted, returns)
