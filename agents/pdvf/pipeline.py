"""PD-VF phases (b)-(e) as units of work on one state object, each unit a pure function of that state and seeds.

- ``episodes``: every training policy plays ``episodes_per_pair`` deterministic episodes in every training env
  (one unit per policy); (b), (c) and phase 1 of (d) all learn from these episodes.
- ``dynamics`` (b) and ``policy_embedding`` (c): one epoch per unit; the model with the best held-out loss is
  kept (as the reference keeps its best checkpoint).
- ``value`` (d, phase 1): one step of W per unit on (s0, z_d, z_pi, return) rows of those episodes.
- ``dagger`` (d, phase 2): per stage, one unit plays the test-time procedure in every training env from every
  probe policy with both signs of the top eigenvector (one episode each, as many again held out), then
  ``dagger_epochs`` units each take one step on minibatches of 1/4 phase-1 rows and 3/4 "new" rows: those of
  every stage so far (``dagger_aggregate``, DAgger's aggregation; the reference re-creates its "new" buffer
  each stage, and then W forgets the last stage's bad maximisers and returns to them, its decoded returns
  alternating between stages). W then continues into the next stage;
  after the last stage the best held-out W of that stage acts (the reference evaluates ``pdvf-stage20``).
- ``signs`` (e): one unit per test env plays the test-time procedure with both signs from every probe policy
  and records which sign did better (see ``adapt``).

Differences from the reference: the probe transition and the rollout it scores are one episode (the
reference re-draws theta in between); the policy decoder is not fine-tuned in phase 2 (the reference's
targets there are the decoder's own actions, a fixed point, and its evaluation loads the phase-(c) decoder);
phase 2 fits both sign rows of a pair to the better sign's return (``dagger_best_sign``: W(u) = W(-u)); only
policies that scored at least ``ppo_retry_below`` probe (the reference's 15 probes are well-trained seeds).
Read in the reference (an audit, not run): its probe transition is taken after the probe's whole episode, on
an env that auto-reset to index 0, so its z_d always comes from env 0; and phase 1 stores z_pi = 0 for every
episode that ends before step 50 (an in-place mask on a tensor already pushed), so its W learns mostly from
the phase-2 rows. anew infers z_d from the test env itself and fits phase 1 on the real embeddings.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from anew.agents.core import EnvFactory, Phase
from anew.agents.pdvf.adapt import Adapter, PDVFModels, SignTable
from anew.agents.pdvf.config import PDVFConfig
from anew.agents.pdvf.data import mix_counts, normalise_returns
from anew.agents.pdvf.rollouts import PolicyLibrary, episode_seed, play_in, with_noise
from anew.agents.pdvf.training import (
    EpisodeData,
    ValueRows,
    clone_state,
    concat_rows,
    dynamics_epoch,
    dynamics_heldout_loss,
    mixed_rows,
    policy_epoch,
    policy_heldout_loss,
    sample_rows,
    value_error,
    value_rows,
    value_step,
)

Work = Callable[[int], dict[str, float]]
PHASE_TAGS = {
    "episodes": 201,
    "dynamics": 202,
    "policy_embedding": 203,
    "value": 204,
    "dagger": 205,
    "signs": 206,
}


class Pipeline:
    """The learnt state of phases (b)-(e) and one method per unit of work (see the module docstring)."""

    def __init__(
        self,
        config: PDVFConfig,
        models: PDVFModels,
        library: Callable[[], PolicyLibrary],
        low: np.ndarray,
        high: np.ndarray,
        seed: int,
    ):
        self.config, self.models, self.library, self.seed = config, models, library, seed
        self.low, self.high = low, high
        self.dynamics_optimizer = torch.optim.Adam(
            [*models.dynamics_encoder.parameters(), *models.dynamics_decoder.parameters()],
            lr=config.dynamics_lr,
        )
        self.policy_optimizer = torch.optim.Adam(
            [*models.policy_encoder.parameters(), *models.policy_decoder.parameters()], lr=config.policy_lr
        )
        self.value_optimizer = torch.optim.Adam(
            models.value.parameters(), lr=config.value_lr, eps=config.value_eps
        )
        # The reference's phase 2 steps a second Adam (``optimizer2``) on the same network.
        self.dagger_optimizer = torch.optim.Adam(
            models.value.parameters(), lr=config.value_lr, eps=config.value_eps
        )
        self.episode_parts: list[EpisodeData] = []
        self._episodes: EpisodeData | None = None  # episode_parts joined, built when first needed
        self.best: dict[str, tuple[float, dict[str, Any]]] = {}  # name -> (held-out loss, weights)
        self.first_rows: tuple[ValueRows, ValueRows] | None = None  # phase-1 value rows (train, held out)
        self.stage_rows: tuple[ValueRows, ValueRows] | None = None  # the current stage's rows
        self.sign_parts: list[tuple[torch.Tensor, torch.Tensor]] = []  # per test env: centroids, signs

    # ------------------------------------------------------------------ helpers
    def unit_rng(self, phase: str, unit: int) -> np.random.Generator:
        return np.random.default_rng(episode_seed(self.seed, PHASE_TAGS[phase], unit))

    @property
    def episodes(self) -> EpisodeData:
        if self._episodes is None:
            self._episodes = EpisodeData.concat(self.episode_parts)
        return self._episodes

    def keep_best(self, name: str, loss: float, modules: list[torch.nn.Module]) -> None:
        if name not in self.best or loss < self.best[name][0]:
            self.best[name] = (loss, {str(i): clone_state(m) for i, m in enumerate(modules)})

    def restore_best(self, name: str, modules: list[torch.nn.Module]) -> None:
        if name in self.best:
            for i, module in enumerate(modules):
                module.load_state_dict(self.best[name][1][str(i)])

    def sign_table(self) -> SignTable:
        if not self.sign_parts:
            return SignTable()
        return SignTable(
            torch.stack([c for c, _ in self.sign_parts]), torch.stack([s for _, s in self.sign_parts])
        )

    def adapter(self, sign_rule: Any = None) -> Adapter:
        return Adapter(
            self.models,
            self.library(),
            self.config.inf_num_steps,
            self.low,
            self.high,
            sign_rule or self.sign_table(),
        )

    # ------------------------------------------------------------------ units
    def collect_episodes(self, unit: int, make_envs: EnvFactory) -> dict[str, float]:
        """Policy ``unit`` plays ``episodes_per_pair`` deterministic episodes in every training env, and as many
        ``noisy_episodes_per_pair`` with Gaussian action noise whose actions are then relabelled with the
        policy's own (DART-style: the policy decoder also learns the policy off its path, where decoded
        policies go in new dynamics). After the last policy the networks' input statistics are set."""
        c, library = self.config, self.library()
        parts, returns = [], []
        for env in c.train_envs:
            for noisy, count in ((False, c.episodes_per_pair), (True, c.noisy_episodes_per_pair)):
                if count == 0:
                    continue
                seed = episode_seed(self.seed, PHASE_TAGS["episodes"], unit, env, int(noisy))
                batch = play_in(
                    make_envs,
                    count,
                    seed,
                    with_noise(library.fixed(unit), c.label_noise, self.low, self.high, seed)
                    if noisy
                    else library.fixed(unit),
                    c.max_episode_steps,
                    env_index=env,
                )
                if noisy:  # the labels: what the policy itself does where the noisy episode went
                    flat = batch.obs[:, :-1].reshape(-1, batch.obs.shape[-1])
                    batch.actions = library.fixed(unit)(flat).reshape(batch.actions.shape).astype(np.float32)
                    batch.actions *= (np.arange(batch.actions.shape[1])[None] < batch.lengths[:, None])[
                        ..., None
                    ]
                normalised = normalise_returns(batch.returns(c.gamma), (c.return_min, c.return_max))
                heldout = np.arange(count) % c.heldout_every == c.heldout_every - 1
                parts.append(EpisodeData.from_batch(batch, normalised, unit, env, heldout, noisy))
                if not noisy:
                    returns.append(float(normalised.mean()))
        self.episode_parts.append(EpisodeData.concat(parts))
        self._episodes = None
        if len(self.episode_parts) == len(c.train_envs):
            scale = torch.as_tensor(np.maximum(np.abs(self.low), np.abs(self.high)))
            self.models.set_normalisation(self.episodes.valid_obs(), self.episodes.valid_changes(), scale)
        return {"charts/episodic_return": float(np.mean(returns)), "charts/own_env_return": returns[unit]}

    def dynamics_unit(self, unit: int, units: int) -> dict[str, float]:
        c, m = self.config, self.models
        noise = torch.Generator().manual_seed(episode_seed(self.seed, PHASE_TAGS["dynamics"], unit, 1))
        data = self.episodes
        train = dynamics_epoch(
            m,
            self.dynamics_optimizer,
            data,
            c.dynamics_batch,
            c.inf_num_steps,
            self.unit_rng("dynamics", unit),
            noise,
        )
        heldout = dynamics_heldout_loss(m, data, c.inf_num_steps)
        modules = [m.dynamics_encoder, m.dynamics_decoder]
        self.keep_best("dynamics", heldout, modules)
        if unit == units - 1:
            self.restore_best("dynamics", modules)
        return {"losses/dynamics_loss": train, "losses/dynamics_heldout_loss": heldout}

    def policy_unit(self, unit: int, units: int) -> dict[str, float]:
        m = self.models
        data = self.episodes
        train = policy_epoch(
            m, self.policy_optimizer, data, self.config.policy_batch, self.unit_rng("policy_embedding", unit)
        )
        heldout = policy_heldout_loss(m, data)
        modules = [m.policy_encoder, m.policy_decoder]
        self.keep_best("policy", heldout, modules)
        if unit == units - 1:
            self.restore_best("policy", modules)
        return {"losses/policy_loss": train, "losses/policy_heldout_loss": heldout}

    def value_unit(self, unit: int, units: int) -> dict[str, float]:
        if self.first_rows is None:
            self.first_rows = value_rows(self.models, self.episodes, self.config.inf_num_steps)
        train_rows, heldout_rows = self.first_rows
        batch = sample_rows(train_rows, self.config.value_batch, self.unit_rng("value", unit))
        loss = value_step(self.models, self.value_optimizer, batch)
        heldout = value_error(self.models, heldout_rows)
        self.keep_best("value", heldout, [self.models.value])
        if unit == units - 1:
            self.restore_best("value", [self.models.value])
        return {"losses/value_loss": loss, "losses/value_heldout_loss": heldout}

    def dagger_unit(self, unit: int, units: int, make_envs: EnvFactory) -> dict[str, float]:
        per_stage = 1 + self.config.dagger_epochs
        stage, step = divmod(unit, per_stage)
        if step == 0:
            self.best.pop("dagger", None)
            return self.collect_stage(stage, make_envs)
        assert self.first_rows is not None and self.stage_rows is not None
        batch = mixed_rows(
            self.first_rows[0], self.stage_rows[0], self.config.value_batch, self.unit_rng("dagger", unit)
        )
        loss = value_step(self.models, self.dagger_optimizer, batch)
        # Held-out error weighted as the minibatches are mixed (the reference samples a mixed held-out batch).
        old_weight = mix_counts(self.config.value_batch)[0] / self.config.value_batch
        heldout = old_weight * value_error(self.models, self.first_rows[1]) + (1 - old_weight) * value_error(
            self.models, self.stage_rows[1]
        )
        self.keep_best("dagger", heldout, [self.models.value])
        if unit == units - 1:
            self.restore_best("dagger", [self.models.value])
        return {"losses/value_loss": loss, "losses/value_heldout_loss": heldout}

    def play_both_signs(
        self, env: int, copies: int, seed: int, make_envs: EnvFactory, probe_set: np.ndarray | None = None
    ) -> ValueRows:
        """Test-time episodes in env ``env``, every probe policy (the library's probes, or ``probe_set``) x both
        signs x ``copies``: their value rows, in slot order copy, then probe, then sign (+ then -)."""
        c = self.config
        chosen = self.library().probes if probe_set is None else probe_set
        probes = np.tile(np.repeat(chosen, 2), copies)
        signs = np.tile([1, -1], len(chosen) * copies)
        adapter = self.adapter()
        adapter.start(np.ones(len(probes), dtype=bool), probes, signs)
        rng = np.random.default_rng(seed)
        batch = play_in(
            make_envs,
            len(probes),
            seed,
            lambda obs: adapter.act(obs, rng),
            c.max_episode_steps,
            env_index=env,
        )
        returns = normalise_returns(batch.returns(c.gamma), (c.return_min, c.return_max))
        rows = {
            "initial": torch.as_tensor(adapter.initial),
            "dynamics": adapter.dynamics.clone(),
            "policy": adapter.embedding.clone(),
            "returns": torch.as_tensor(returns, dtype=torch.float32),
        }
        return rows

    def collect_stage(self, stage: int, make_envs: EnvFactory) -> dict[str, float]:
        c = self.config
        parts = [
            self.play_both_signs(
                env,
                2 * c.dagger_episodes,
                episode_seed(self.seed, PHASE_TAGS["dagger"], stage, env),
                make_envs,
            )
            for env in c.train_envs
        ]
        rows = concat_rows(parts)
        paired = rows["returns"].view(-1, 2)
        logged = {
            "charts/decoded_return": float(rows["returns"].mean()),
            "charts/best_sign_return": float(paired.max(dim=1).values.mean()),
        }
        if c.dagger_best_sign:  # both rows of a pair: the better sign's return (see the config)
            rows["returns"] = paired.max(dim=1).values.repeat_interleave(2)
        copy = (
            torch.arange(len(rows["returns"])) // (2 * len(self.library().probes)) % (2 * c.dagger_episodes)
        )
        heldout = copy >= c.dagger_episodes
        new = ({k: v[~heldout] for k, v in rows.items()}, {k: v[heldout] for k, v in rows.items()})
        if c.dagger_aggregate and self.stage_rows is not None:  # DAgger's aggregation: every stage so far
            new = (concat_rows([self.stage_rows[0], new[0]]), concat_rows([self.stage_rows[1], new[1]]))
        self.stage_rows = new
        return logged

    def calibrate_signs(self, unit: int, make_envs: EnvFactory) -> dict[str, float]:
        """Test env ``unit``: which sign does better from each probe policy, and the mean z_d it saw there."""
        c = self.config
        seed = episode_seed(self.seed, PHASE_TAGS["signs"], unit)
        count = len(self.library())  # every policy: the sign table is indexed by library position
        rows = self.play_both_signs(c.test_envs[unit], c.sign_episodes, seed, make_envs, np.arange(count))
        returns = rows["returns"].view(c.sign_episodes, count, 2).mean(0)  # [P, sign]
        centroids = rows["dynamics"].view(c.sign_episodes, count, 2, -1).mean(dim=(0, 2))
        signs = torch.where(returns[:, 0] >= returns[:, 1], 1, -1)
        self.sign_parts.append((centroids, signs))
        return {
            "charts/plus_return": float(returns[:, 0].mean()),
            "charts/minus_return": float(returns[:, 1].mean()),
            "charts/chosen_return": float(returns.max(dim=1).values.mean()),
            "charts/plus_fraction": float((signs > 0).float().mean()),
        }

    # ------------------------------------------------------------------ phases
    def seeded(self, name: str, work: Work) -> Work:
        """``work`` with torch's global RNG (dropout) seeded per unit and restored afterwards."""

        def run(unit: int) -> dict[str, float]:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(episode_seed(self.seed, PHASE_TAGS[name], unit, 2))
                return work(unit)

        return run

    def phases(self, make_envs: EnvFactory) -> list[Phase]:
        """Phases (b)-(e) in order (``dagger`` only with stages, ``signs`` only with sign episodes)."""
        c, seeded = self.config, self.seeded
        policies = len(c.train_envs)
        units = {
            "dynamics": c.dynamics_epochs,
            "policy_embedding": c.policy_epochs,
            "value": c.value_epochs,
            "dagger": c.dagger_stages * (1 + c.dagger_epochs),
        }
        phases = [
            Phase(
                "episodes", policies, lambda u: self.collect_episodes(u, make_envs), log_prefix="episodes/"
            ),
            Phase(
                "dynamics",
                units["dynamics"],
                seeded("dynamics", lambda u: self.dynamics_unit(u, units["dynamics"])),
                log_prefix="dynamics/",
            ),
            Phase(
                "policy_embedding",
                units["policy_embedding"],
                seeded("policy_embedding", lambda u: self.policy_unit(u, units["policy_embedding"])),
                log_prefix="policy_embedding/",
            ),
            Phase(
                "value",
                units["value"],
                seeded("value", lambda u: self.value_unit(u, units["value"])),
                log_prefix="value/",
            ),
        ]
        if units["dagger"]:
            phases.append(
                Phase(
                    "dagger",
                    units["dagger"],
                    seeded("dagger", lambda u: self.dagger_unit(u, units["dagger"], make_envs)),
                    log_prefix="dagger/",
                )
            )
        if c.sign_episodes:
            phases.append(
                Phase(
                    "signs",
                    len(c.test_envs),
                    lambda u: self.calibrate_signs(u, make_envs),
                    log_prefix="signs/",
                )
            )
        return [phase for phase in phases if phase.units > 0]

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        return {
            "models": self.models.state_dict(),
            "optimizers": {
                name: getattr(self, f"{name}_optimizer").state_dict()
                for name in ("dynamics", "policy", "value", "dagger")
            },
            "episode_parts": [part.state_dict() for part in self.episode_parts],
            "best": {name: {"loss": loss, "weights": weights} for name, (loss, weights) in self.best.items()},
            "first_rows": list(self.first_rows) if self.first_rows is not None else None,
            "stage_rows": list(self.stage_rows) if self.stage_rows is not None else None,
            "sign_parts": [list(part) for part in self.sign_parts],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.models.load_state_dict(state["models"])
        for name, optimizer_state in state["optimizers"].items():
            getattr(self, f"{name}_optimizer").load_state_dict(optimizer_state)
        self.episode_parts = [EpisodeData.from_state(part) for part in state["episode_parts"]]
        self._episodes = None
        self.best = {name: (float(entry["loss"]), entry["weights"]) for name, entry in state["best"].items()}
        self.first_rows = tuple(state["first_rows"]) if state["first_rows"] is not None else None
        self.stage_rows = tuple(state["stage_rows"]) if state["stage_rows"] is not None else None
        self.sign_parts = [(centroids, signs) for centroids, signs in state["sign_parts"]]
