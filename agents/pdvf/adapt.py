"""PD-VF's five networks together, and the test-time procedure (phase e) for a batch of episodes.

Test time (reference ``eval_pdvf.py``): a probe policy (one of the training policies, acting deterministically)
plays the first ``inf_steps`` steps; their transitions (s, a, s') give z_d; the top eigenvector u of
A(s0, z_d) maximises W over unit policy embeddings; the policy decoder then acts with +u or -u for the rest of
the same episode. W(u) = W(-u), so the value cannot pick the sign: the reference rolls out both and keeps the
better (two extra episodes). Here a ``SignTable`` filled before evaluation by such paired rollouts in the
test environments (see ``pipeline.calibrate_signs``) picks the sign from z_d; training rollouts force it.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from anew.agents.pdvf.embeddings import (
    DynamicsDecoder,
    PolicyDecoder,
    SetEncoder,
    dynamics_tokens,
    policy_tokens,
)
from anew.agents.pdvf.rollouts import PolicyLibrary
from anew.agents.pdvf.value import PDVFNetwork, optimal_policy_embedding


class PDVFModels(nn.Module):
    """Dynamics encoder/decoder, policy encoder/decoder and the value network, built from one generator.

    Every network sees observations standardised by the training episodes' statistics and actions divided by
    the action bound (buffers set once by ``set_normalisation``): raw Spaceship positions up to 5 saturate the
    tanh layers of the policy decoder, which then copies policies well on their own paths and badly off them.
    Transitions enter the dynamics networks as (s, a, s' - s) with the change standardised on its own: a
    Spaceship step moves the ship by ~0.1 and the charge near the door changes it by ~0.01, invisible next to
    positions of spread ~1.4 (a z_d from raw (s, a, s') ignores that charge). The dynamics decoder predicts
    the standardised change; the policy decoder the scaled action.
    """

    def __init__(
        self,
        state_size: int,
        action_size: int,
        dynamics_size: int,
        policy_size: int,
        d_model: int,
        dropout: float,
        value_hidden: int,
        gaussian_dynamics: bool,
        generator: torch.Generator,
    ):
        super().__init__()
        self.state_size, self.action_size = state_size, action_size
        self.dynamics_size, self.policy_size = dynamics_size, policy_size
        self.dynamics_encoder = SetEncoder(
            2 * state_size + action_size, dynamics_size, d_model, 1, dropout, generator
        )
        self.dynamics_decoder = DynamicsDecoder(
            dynamics_size, state_size, action_size, gaussian=gaussian_dynamics, generator=generator
        )
        self.policy_encoder = SetEncoder(
            state_size + action_size, policy_size, d_model, 1, dropout, generator
        )
        self.policy_decoder = PolicyDecoder(policy_size, state_size, action_size, generator=generator)
        self.value = PDVFNetwork(state_size, dynamics_size, policy_size, value_hidden, generator)
        self.register_buffer("obs_mean", torch.zeros(state_size))
        self.register_buffer("obs_std", torch.ones(state_size))
        self.register_buffer("action_scale", torch.ones(action_size))
        self.register_buffer("change_mean", torch.zeros(state_size))
        self.register_buffer("change_std", torch.ones(state_size))

    def set_normalisation(self, obs: torch.Tensor, changes: torch.Tensor, action_scale: torch.Tensor) -> None:
        """Statistics from observations [N, |S|], their one-step changes [M, |S|] and the action bound [|A|]."""
        self.obs_mean.copy_(obs.mean(0))
        self.obs_std.copy_(obs.std(0).clamp_min(1e-6))
        self.change_mean.copy_(changes.mean(0))
        self.change_std.copy_(changes.std(0).clamp_min(1e-6))
        self.action_scale.copy_(action_scale.abs().clamp_min(1e-6))

    def norm(self, obs: torch.Tensor) -> torch.Tensor:
        return (obs - self.obs_mean) / self.obs_std

    def change(self, obs: torch.Tensor, next_obs: torch.Tensor) -> torch.Tensor:
        """The standardised one-step change s' - s (what the dynamics decoder predicts)."""
        return (next_obs - obs - self.change_mean) / self.change_std

    # With gradients: what the fits train through.
    def dynamics_z(
        self,
        obs: torch.Tensor,
        actions: torch.Tensor,
        next_obs: torch.Tensor,
        mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        tokens = dynamics_tokens(self.norm(obs), actions / self.action_scale, self.change(obs, next_obs))
        return self.dynamics_encoder(tokens, mask)

    def predicted_next(
        self,
        z: torch.Tensor,
        obs: torch.Tensor,
        actions: torch.Tensor,
        noise: torch.Generator | None = None,
        mean_only: bool = False,
    ) -> torch.Tensor:
        """The decoder's standardised change s' - s (a sample, or its mean)."""
        inputs = (z, self.norm(obs), actions / self.action_scale)
        return (
            self.dynamics_decoder.distribution(*inputs)[0]
            if mean_only
            else self.dynamics_decoder(*inputs, noise)
        )

    def policy_z(
        self, obs: torch.Tensor, actions: torch.Tensor, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        return self.policy_encoder(policy_tokens(self.norm(obs), actions / self.action_scale), mask)

    def decoded_actions(self, z: torch.Tensor, obs: torch.Tensor) -> torch.Tensor:
        """The policy decoder's actions, in the env's units (unclipped)."""
        return self.policy_decoder(z, self.norm(obs)) * self.action_scale

    def values(self, initial_obs: torch.Tensor, dynamics: torch.Tensor, policy: torch.Tensor) -> torch.Tensor:
        return self.value(self.norm(initial_obs), dynamics, policy)

    # Without gradients: acting and building data sets.
    @torch.no_grad()
    def infer_dynamics(self, obs: torch.Tensor, actions: torch.Tensor, steps: torch.Tensor) -> torch.Tensor:
        """z_d from the first transitions: ``obs`` [B, k + 1, |S|], ``actions`` [B, k, |A|], valid ``steps`` [B]."""
        k = actions.shape[1]
        mask = torch.arange(k, device=obs.device)[None] < steps.clamp(min=1)[:, None]
        self.dynamics_encoder.eval()
        return self.dynamics_z(obs[:, :k], actions, obs[:, 1 : k + 1], mask)

    @torch.no_grad()
    def embed_policy(self, obs: torch.Tensor, actions: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """z_pi of whole episodes: ``obs`` [B, T + 1, |S|], ``actions`` [B, T, |A|], ``lengths`` [B]."""
        steps = actions.shape[1]
        mask = torch.arange(steps, device=obs.device)[None] < lengths.clamp(min=1)[:, None]
        self.policy_encoder.eval()
        return self.policy_z(obs[:, :steps], actions, mask)

    @torch.no_grad()
    def best_embedding(self, initial_obs: torch.Tensor, dynamics: torch.Tensor) -> torch.Tensor:
        """The top eigenvector u of A(s0, z_d) (its largest component positive) [B, d_pi]."""
        return optimal_policy_embedding(self.value.matrix(self.norm(initial_obs), dynamics))[0]


SignRule = Callable[[np.ndarray, torch.Tensor], np.ndarray]
"""(probe index [B], z_d [B, d]) -> sign of the decoded embedding, +1 or -1, per slot."""


class SignTable:
    """Signs measured per (test environment, probe) with the mean z_d of those rollouts; a new episode takes the
    sign of the nearest mean z_d among its probe's rows. Empty: always +1."""

    def __init__(self, centroids: torch.Tensor | None = None, signs: torch.Tensor | None = None):
        self.centroids, self.signs = centroids, signs  # [E, P, d], [E, P] of +-1

    def __call__(self, probes: np.ndarray, dynamics: torch.Tensor) -> np.ndarray:
        if self.centroids is None or self.signs is None or len(self.centroids) == 0:
            return np.ones(len(probes), dtype=np.int64)
        rows = self.centroids[:, torch.as_tensor(probes, dtype=torch.long)].transpose(0, 1)  # [B, E, d]
        nearest = (rows - dynamics.cpu()[:, None]).norm(dim=-1).argmin(dim=1)
        return self.signs[nearest, torch.as_tensor(probes, dtype=torch.long)].numpy().astype(np.int64)


class Adapter:
    """The test-time procedure for a batch of episode slots, each with its own step count (see module docstring).

    ``start(mask, probes, signs)`` begins episodes in the masked slots: ``probes`` the probe policy per slot
    (-1: draw it at the first ``act``, from a deck of the library's probes shuffled by that call's generator), ``signs`` +-1 to force the sign (0: the
    sign rule). After inference each slot's s0, z_d and decoded embedding are in ``initial``, ``dynamics``,
    ``embedding``.
    """

    def __init__(
        self,
        models: PDVFModels,
        library: PolicyLibrary,
        inf_steps: int,
        low: np.ndarray,
        high: np.ndarray,
        sign_rule: SignRule,
    ):
        self.models, self.library, self.inf_steps = models, library, inf_steps
        self.low, self.high, self.sign_rule = low, high, sign_rule
        self.device = next(models.parameters()).device
        self.deck = np.zeros(0, np.int64)  # probe policies still to be drawn
        self.resize(0)

    def resize(self, num: int) -> None:
        """Room for ``num`` slots, none of them started."""
        k, m = self.inf_steps, self.models
        self.t = np.zeros(num, np.int64)
        self.probes = np.full(num, -1, np.int64)
        self.forced = np.zeros(num, np.int64)
        self.context_obs = np.zeros((num, k + 1, m.state_size), np.float32)
        self.context_actions = np.zeros((num, k, m.action_size), np.float32)
        self.initial = np.zeros((num, m.state_size), np.float32)
        self.dynamics = torch.zeros(num, m.dynamics_size)
        self.embedding = torch.zeros(num, m.policy_size)

    def start(
        self, mask: np.ndarray, probes: np.ndarray | None = None, signs: np.ndarray | None = None
    ) -> None:
        mask = np.asarray(mask, dtype=bool)
        if len(mask) != len(self.t):
            self.resize(len(mask))
            mask = np.ones(len(mask), dtype=bool)
        self.t[mask] = 0
        self.probes[mask] = -1 if probes is None else np.asarray(probes)[mask]
        self.forced[mask] = 0 if signs is None else np.asarray(signs)[mask]

    @torch.no_grad()
    def act(self, obs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        obs = np.asarray(obs, np.float32).reshape(len(obs), -1)
        if len(obs) != len(self.t):  # a batch of another size: every slot starts an episode now
            self.resize(len(obs))
        pending = np.flatnonzero(self.probes < 0)
        if len(pending):  # from a shuffled deck of the probe policies: each plays about as often
            while len(self.deck) < len(pending):
                self.deck = np.concatenate([self.deck, rng.permutation(self.library.probes)])
            self.probes[pending], self.deck = self.deck[: len(pending)], self.deck[len(pending) :]
        starting = self.t == 0
        self.initial[starting] = obs[starting]
        observed = np.flatnonzero(self.t <= self.inf_steps)
        self.context_obs[observed, self.t[observed]] = obs[observed]
        ready = self.t == self.inf_steps
        if ready.any():
            self._infer(np.flatnonzero(ready))
        actions = np.zeros((len(obs), *self.low.shape), np.float32)
        probing = self.t < self.inf_steps
        if probing.any():
            rows = np.flatnonzero(probing)
            actions[rows] = self.library.act(self.probes[rows], obs[rows])
            self.context_actions[rows, self.t[rows]] = actions[rows].reshape(len(rows), -1)
        if (~probing).any():
            rows = np.flatnonzero(~probing)
            state = torch.as_tensor(obs[rows], device=self.device)
            self.models.policy_decoder.eval()
            decoded = self.models.decoded_actions(self.embedding[rows].to(self.device), state).cpu().numpy()
            actions[rows] = np.clip(decoded.reshape(len(rows), *self.low.shape), self.low, self.high)
        self.t += 1
        return actions

    def _infer(self, rows: np.ndarray) -> None:
        def tensor(array: np.ndarray) -> torch.Tensor:
            return torch.as_tensor(array[rows], device=self.device)

        steps = torch.full((len(rows),), self.inf_steps, device=self.device)
        dynamics = self.models.infer_dynamics(tensor(self.context_obs), tensor(self.context_actions), steps)
        best = self.models.best_embedding(tensor(self.initial), dynamics).cpu()
        signs = self.forced[rows].copy()
        rule = signs == 0
        if rule.any():
            signs[rule] = self.sign_rule(self.probes[rows][rule], dynamics[torch.as_tensor(rule)].cpu())
        self.dynamics[rows] = dynamics.cpu()
        self.embedding[rows] = best * torch.as_tensor(signs, dtype=best.dtype)[:, None]
