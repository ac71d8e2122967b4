"""One epoch (or step) of each PD-VF fit, on episodes held as tensors: phases (b), (c) and (d).

Every function takes its randomness as arguments (a numpy generator for minibatches and target steps, a torch
generator for the dynamics decoder's noise; dropout draws from torch's global RNG, which the caller seeds), so
an epoch is a pure function of the weights, the optimizer state and its seeds: a resumed run replays it.
Losses are the reference's: sums of squared errors for the embeddings, MSE for the value.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import torch

from anew.agents.pdvf.adapt import PDVFModels
from anew.agents.pdvf.data import mix_counts
from anew.agents.pdvf.embeddings import behaviour_cloning_loss, dynamics_loss
from anew.agents.pdvf.rollouts import EpisodeBatch
from anew.agents.pdvf.value import value_loss


@dataclass
class EpisodeData:
    """Episodes of the training policies in the training envs, with who played where and the held-out split."""

    obs: torch.Tensor  # [N, T + 1, |S|]
    actions: torch.Tensor  # [N, T, |A|]
    lengths: torch.Tensor  # [N] long
    returns: torch.Tensor  # [N] float (normalised to [0, 1])
    policy: torch.Tensor  # [N] long: index of the policy that played
    env: torch.Tensor  # [N] long: env index played in
    heldout: torch.Tensor  # [N] bool: kept out of training, for picking the best model
    noisy: torch.Tensor  # [N] bool: played with action noise, actions relabelled (policy embedding only)

    @classmethod
    def from_batch(
        cls, batch: EpisodeBatch, returns: np.ndarray, policy: int, env: int, heldout: np.ndarray, noisy: bool
    ) -> EpisodeData:
        n = len(batch.lengths)
        return cls(
            torch.as_tensor(batch.obs),
            torch.as_tensor(batch.actions),
            torch.as_tensor(batch.lengths),
            torch.as_tensor(returns, dtype=torch.float32),
            torch.full((n,), policy),
            torch.full((n,), env),
            torch.as_tensor(heldout, dtype=torch.bool),
            torch.full((n,), noisy),
        )

    @classmethod
    def concat(cls, parts: list[EpisodeData]) -> EpisodeData:
        return cls(*(torch.cat([getattr(p, f.name) for p in parts]) for f in fields(cls)))

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_state(cls, state: dict[str, torch.Tensor]) -> EpisodeData:
        return cls(**{f.name: state[f.name] for f in fields(cls)})

    def rows(self, heldout: bool, noisy: bool | None = False) -> np.ndarray:
        """Episode indices of the held-out or training split; noisy ones too with ``noisy=None``."""
        keep = self.heldout == heldout
        if noisy is not None:
            keep &= self.noisy == noisy
        return np.flatnonzero(keep.numpy())

    def valid_obs(self) -> torch.Tensor:
        """Every observation of the episodes [M, |S|] (for normalisation statistics)."""
        steps = self.obs.shape[1]
        return self.obs[torch.arange(steps)[None] <= self.lengths[:, None]]

    def valid_changes(self) -> torch.Tensor:
        """Every one-step change s' - s of the deterministic episodes [M, |S|]."""
        rows = ~self.noisy
        changes = self.obs[rows, 1:] - self.obs[rows, :-1]
        return changes[torch.arange(changes.shape[1])[None] < self.lengths[rows][:, None]]

    def step_mask(self, rows: np.ndarray) -> torch.Tensor:
        steps = self.actions.shape[1]
        return torch.arange(steps)[None] < self.lengths[rows].clamp(min=1)[:, None]


def _minibatches(rows: np.ndarray, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    order = rng.permutation(rows)
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def _context(models: PDVFModels, data: EpisodeData, rows: np.ndarray, inf_steps: int) -> torch.Tensor:
    """z_d (with gradients) from the first ``inf_steps`` transitions of each episode."""
    k = inf_steps
    obs, actions = data.obs[rows], data.actions[rows, :k]
    mask = torch.arange(k)[None] < data.lengths[rows].clamp(min=1)[:, None]
    return models.dynamics_z(obs[:, :k], actions, obs[:, 1 : k + 1], mask)


def dynamics_epoch(
    models: PDVFModels,
    optimizer: torch.optim.Optimizer,
    data: EpisodeData,
    batch_size: int,
    inf_steps: int,
    rng: np.random.Generator,
    noise: torch.Generator,
) -> float:
    """Phase (b): one pass over the training episodes; each predicts s' of one random step of its episode from
    (z_d of its first transitions, s, a). Returns the mean squared error per transition."""
    models.dynamics_encoder.train()
    models.dynamics_decoder.train()
    total, count = 0.0, 0
    for rows in _minibatches(data.rows(False), batch_size, rng):
        steps = torch.as_tensor((rng.random(len(rows)) * data.lengths[rows].numpy()).astype(np.int64))
        z = _context(models, data, rows, inf_steps)
        states, next_states = data.obs[rows, steps], data.obs[rows, steps + 1]
        predicted = models.predicted_next(z, states, data.actions[rows, steps], noise)
        loss = dynamics_loss(predicted, models.change(states, next_states))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total, count = total + loss.item(), count + len(rows)
    return total / max(count, 1)


@torch.no_grad()
def dynamics_heldout_loss(models: PDVFModels, data: EpisodeData, inf_steps: int) -> float:
    """Squared error of the decoder's mean per transition, over every step of the held-out episodes."""
    rows = data.rows(True)
    if len(rows) == 0:
        return float("nan")
    models.eval()
    z = _context(models, data, rows, inf_steps)
    steps = data.actions.shape[1]
    z_all = z[:, None].expand(-1, steps, -1)
    mean = models.predicted_next(z_all, data.obs[rows, :steps], data.actions[rows], mean_only=True)
    mask = data.step_mask(rows)
    squared = ((mean - models.change(data.obs[rows, :steps], data.obs[rows, 1:])) ** 2).sum(-1)
    return float((squared * mask).sum() / mask.sum())


def _policy_loss(models: PDVFModels, data: EpisodeData, rows: np.ndarray) -> tuple[torch.Tensor, int]:
    steps = data.actions.shape[1]
    mask = data.step_mask(rows)
    obs, actions = data.obs[rows, :steps], data.actions[rows]
    z = models.policy_z(obs, actions, mask)
    scale = models.action_scale
    predicted = models.decoded_actions(z, obs) / scale  # the loss in scaled action units
    return behaviour_cloning_loss(predicted, actions / scale, mask), int(mask.sum())


def policy_epoch(
    models: PDVFModels,
    optimizer: torch.optim.Optimizer,
    data: EpisodeData,
    batch_size: int,
    rng: np.random.Generator,
) -> float:
    """Phase (c): one pass over the training episodes, ``batch_size`` episodes a step: the decoder clones every
    action of an episode from (z_pi of that episode, s). Returns the squared error per action."""
    models.policy_encoder.train()
    models.policy_decoder.train()
    total, count = 0.0, 0
    for rows in _minibatches(data.rows(False, noisy=None), batch_size, rng):
        loss, steps = _policy_loss(models, data, rows)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total, count = total + loss.item(), count + steps
    return total / max(count, 1)


@torch.no_grad()
def policy_heldout_loss(models: PDVFModels, data: EpisodeData) -> float:
    rows = data.rows(True, noisy=None)
    if len(rows) == 0:
        return float("nan")
    models.eval()
    loss, steps = _policy_loss(models, data, rows)
    return loss.item() / max(steps, 1)


ValueRows = dict[str, torch.Tensor]
"""The value's data: ``initial`` s0 [N, |S|], ``dynamics`` z_d [N, d_d], ``policy`` z_pi [N, d_pi], ``returns`` [N]."""


@torch.no_grad()
def value_rows(models: PDVFModels, data: EpisodeData, inf_steps: int) -> tuple[ValueRows, ValueRows]:
    """Phase (d)'s first data set (train, held-out): each episode's s0, the z_d of its first transitions, the z_pi
    of the whole episode and its return (the reference's ``zeroshot_sample_src_from_pol_state``)."""
    models.eval()
    rows = np.flatnonzero((~data.noisy).numpy())
    dynamics = _context(models, data, rows, inf_steps)
    policy = models.embed_policy(data.obs[rows], data.actions[rows], data.lengths[rows])
    every = {
        "initial": data.obs[rows, 0],
        "dynamics": dynamics,
        "policy": policy,
        "returns": data.returns[rows],
    }
    split = data.heldout[rows]
    return {k: v[~split] for k, v in every.items()}, {k: v[split] for k, v in every.items()}


def value_step(models: PDVFModels, optimizer: torch.optim.Optimizer, batch: ValueRows) -> float:
    """One gradient step of W on a minibatch (the reference's ``optimize_model_pdvf``)."""
    models.value.train()
    loss = value_loss(models.values(batch["initial"], batch["dynamics"], batch["policy"]), batch["returns"])
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.item()


@torch.no_grad()
def value_error(models: PDVFModels, batch: ValueRows) -> float:
    models.value.eval()
    if len(batch["returns"]) == 0:
        return float("nan")
    predicted = models.values(batch["initial"], batch["dynamics"], batch["policy"])
    return value_loss(predicted, batch["returns"]).item()


def sample_rows(rows: ValueRows, count: int, rng: np.random.Generator) -> ValueRows:
    """``count`` rows without replacement (with, when there are fewer): the reference's ``memory.sample``."""
    size = len(rows["returns"])
    index = torch.as_tensor(rng.choice(size, size=count, replace=count > size))
    return {k: v[index] for k, v in rows.items()}


def mixed_rows(old: ValueRows, new: ValueRows, batch_size: int, rng: np.random.Generator) -> ValueRows:
    """1/4 old rows and 3/4 new ones, shuffled (the reference's ``optimize_model_pdvf_phase2``)."""
    num_old, num_new = mix_counts(batch_size)
    rows = concat_rows([sample_rows(old, num_old, rng), sample_rows(new, num_new, rng)])
    order = torch.as_tensor(rng.permutation(len(rows["returns"])))
    return {k: v[order] for k, v in rows.items()}


def concat_rows(parts: list[ValueRows]) -> ValueRows:
    return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}


def clone_state(module: torch.nn.Module) -> dict[str, Any]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}
