"""PD-VF's embeddings: a self-attention set encoder and the decoders that train it (Raileanu et al. 2020).

The same encoder architecture embeds environment dynamics (tokens (s, a, s') from a few transitions) and
policies (tokens (s, a) from a trajectory); the embedding is L2-normalised. Each is trained through a
decoder: the dynamics decoder predicts s' from (z_d, s, a), the policy decoder is an actor on [z_pi, s]
cloning the policy's deterministic actions. Losses are sums of squared errors, as in the reference.

Architecture as the reference's ``embedding_networks.py``: a linear token embedding to d_model 64, one
pre-norm self-attention layer with one head and dropout 0.1 (the reference's sublayer has no residual
connection and no feed-forward block; we keep that), a final LayerNorm, mean-pooling, a linear map to
z. Two documented differences: ``nn.LayerNorm`` (variance-based) instead of the reference's hand-written
std-based one, and padded tokens are excluded from the mean (the reference averages over them too).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from anew.agents.networks import mlp


def _xavier_(module: nn.Module, generator: torch.Generator | None) -> None:
    """The reference's init: Xavier-uniform on every weight matrix, zero biases."""
    for name, parameter in module.named_parameters():
        if parameter.dim() > 1:
            nn.init.xavier_uniform_(parameter, generator=generator)
        elif name.endswith("bias"):
            nn.init.zeros_(parameter)


class SetEncoder(nn.Module):
    """Tokens [B, T, token_size] (+ a validity mask [B, T]) -> an L2-normalised embedding [B, embedding_size].

    Permutation-invariant over the valid tokens. ``dropout`` acts only in ``train()`` mode.
    """

    def __init__(
        self,
        token_size: int,
        embedding_size: int,
        d_model: int = 64,
        num_heads: int = 1,
        dropout: float = 0.1,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        self.token_embedding = nn.Linear(token_size, d_model)
        self.attention_norm = nn.LayerNorm(d_model)
        self.attention = nn.MultiheadAttention(d_model, num_heads, dropout=dropout, batch_first=True)
        self.dropout = nn.Dropout(dropout)
        self.output_norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, embedding_size)
        _xavier_(self, generator)

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``mask[b, t]`` True marks a real token (None: all are real); every row needs one."""
        hidden = self.attention_norm(self.token_embedding(tokens))
        padding = None if mask is None else ~mask
        attended, _ = self.attention(hidden, hidden, hidden, key_padding_mask=padding, need_weights=False)
        hidden = self.output_norm(self.dropout(attended))
        if mask is None:
            pooled = hidden.mean(dim=1)
        else:
            weights = mask.to(hidden.dtype).unsqueeze(-1)
            pooled = (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(1.0)
        return F.normalize(self.head(pooled), p=2, dim=-1)


def dynamics_tokens(states: torch.Tensor, actions: torch.Tensor, next_states: torch.Tensor) -> torch.Tensor:
    """Transitions [B, T, ·] -> dynamics-encoder tokens (s, a, s') [B, T, 2 |S| + |A|]."""
    return torch.cat([states, actions, next_states], dim=-1)


def policy_tokens(states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """A trajectory [B, T, ·] -> policy-encoder tokens (s, a) [B, T, |S| + |A|]."""
    return torch.cat([states, actions], dim=-1)


class DynamicsDecoder(nn.Module):
    """Predicts s' from (z_d, s, a) with a 2-layer ReLU MLP (hidden 32, as the reference).

    ``gaussian=True`` (Spaceship) outputs a mean and a std per coordinate and predicts a reparameterised
    sample, as the reference does; ``gaussian=False`` (MuJoCo) predicts s' directly. The reference takes
    the raw linear output as the std; we pass it through softplus so it is a valid std.
    """

    def __init__(
        self,
        embedding_size: int,
        state_size: int,
        action_size: int,
        hidden: int = 32,
        gaussian: bool = True,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        self.state_size, self.gaussian = state_size, gaussian
        self.body = nn.Sequential(
            nn.Linear(embedding_size + state_size + action_size, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
        )
        self.head = nn.Linear(hidden, state_size * (2 if gaussian else 1))
        _xavier_(self, generator)

    def distribution(
        self, z: torch.Tensor, states: torch.Tensor, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(mean [B, |S|], std [B, |S|] or None when deterministic)."""
        out = self.head(self.body(torch.cat([z, states, actions], dim=-1)))
        if not self.gaussian:
            return out, None
        mean, raw_std = out.split(self.state_size, dim=-1)
        return mean, F.softplus(raw_std)

    def forward(
        self,
        z: torch.Tensor,
        states: torch.Tensor,
        actions: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """The predicted next state: the mean, plus std-scaled Gaussian noise when ``gaussian``."""
        mean, std = self.distribution(z, states, actions)
        if std is None:
            return mean
        noise = torch.randn(mean.shape, generator=generator, dtype=mean.dtype, device=mean.device)
        return mean + std * noise


class PolicyDecoder(nn.Module):
    """The policy decoder: a PPO-shaped actor (tanh MLP 64-64) on [z_pi, s] giving the action (its mean)."""

    def __init__(
        self,
        embedding_size: int,
        state_size: int,
        action_size: int,
        hidden: tuple[int, ...] = (64, 64),
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        generator = generator if generator is not None else torch.default_generator
        self.actor = mlp([embedding_size + state_size, *hidden, action_size], "tanh", 0.01, generator)

    def forward(self, z: torch.Tensor, states: torch.Tensor) -> torch.Tensor:
        """Actions [..., |A|] for embeddings [..., d_pi] and states [..., |S|] (broadcast over time)."""
        if z.dim() < states.dim():
            z = z.unsqueeze(-2).expand(*states.shape[:-1], z.shape[-1])
        return self.actor(torch.cat([z, states], dim=-1))


def dynamics_loss(predicted_next_states: torch.Tensor, next_states: torch.Tensor) -> torch.Tensor:
    """Sum of squared errors of the predicted next states (the reference's ``MSELoss(reduction='sum')``)."""
    return F.mse_loss(predicted_next_states, next_states, reduction="sum")


def behaviour_cloning_loss(
    predicted_actions: torch.Tensor, actions: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Sum of squared action errors over the valid steps (``mask`` [B, T] True = real step)."""
    squared = (predicted_actions - actions) ** 2
    if mask is not None:
        squared = squared * mask.to(squared.dtype).unsqueeze(-1)
    return squared.sum()
