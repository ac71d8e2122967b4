"""Gymnasium faces of the batched inventory simulators, and their registration.

One simulation, two faces (docs/design.md section 4): ``InventoryEnv`` is a single-instance
``gymnasium.Env`` over a batch of one; ``InventoryVectorEnv`` is a ``gymnasium.vector.VectorEnv`` over
the whole batch (``gymnasium.make_vec(id, num_envs=4096)`` builds it through the vector entry
point). Both call the same ``step`` of the same simulator object, so they cannot diverge.

All instances of a batch move in lockstep and end their episodes together (a time limit, or the end
of the replayed record), so episodes are always truncated, never terminated.
"""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space

from anew.envs.inventory import InventoryConfig, InventorySim
from anew.envs.inventory_capacity import CapacityConfig, CapacitySim
from anew.envs.inventory_measures import EpisodeMeter
from anew.envs.inventory_replay import DemandHistorySim, ReplayConfig
from anew.errors import AnewError
from anew.inventory_demand import DemandDistribution

Sim = InventorySim | DemandHistorySim | CapacitySim

# id suffix -> (builder name, max_episode_steps)
ENV_IDS: dict[str, tuple[str, int]] = {
    "anew/LostSales-v0": ("lost_sales", 1000),
    "anew/Backlog-v0": ("backlog", 1000),
    "anew/HistoryReplay-v0": ("history_replay", 104),
    "anew/VendorConstraints-v0": ("vendor_constraints", 104),
    "anew/CapacitatedMultiProduct-v0": ("capacitated", 104),
}
SINGLE_PRODUCT = ("anew/LostSales-v0", "anew/Backlog-v0")
WRAPPER_OPTIONS = ("measure_warmup", "max_episode_steps")
"""Env options that belong to the Gymnasium faces (and ``gym.make``), not to the simulation."""
MEASURE_WARMUP = 100


def _single_product(backlog: bool, kwargs: dict[str, Any]) -> InventoryConfig:
    demand = kwargs.pop("demand", None)
    if demand is None:
        kind, pmf = kwargs.pop("demand_kind", "poisson"), kwargs.pop("demand_pmf", None)
        mean = kwargs.pop("demand_mean", 5.0)
        demand = DemandDistribution.from_pmf(pmf) if pmf is not None else DemandDistribution(kind, mean)
    return InventoryConfig(demand=demand, backlog=backlog, **kwargs)


def make_sim(
    env_id: str, num_envs: int, seed: int | None = None, device: str = "cpu", **kwargs: Any
) -> tuple[Sim, spaces.Box, spaces.Space]:
    """The batched simulator behind ``env_id`` and its single-instance observation and action spaces.

    ``kwargs`` are the env's options (e.g. lead_time, p, h, demand_mean, max_order, action_type for
    LostSales/Backlog; ReplayConfig fields for the replay envs; CapacityConfig fields plus replay
    fields for the capacitated env). Runners use this to get the simulator for differentiable rollouts.
    """
    if env_id not in ENV_IDS:
        raise AnewError(f"unknown inventory env {env_id!r}; choose one of {', '.join(ENV_IDS)}")
    kind = ENV_IDS[env_id][0]
    kwargs = dict(kwargs)
    action_type = kwargs.pop("action_type", "discrete" if kind in ("lost_sales", "backlog") else "continuous")
    if action_type not in ("discrete", "continuous"):
        raise AnewError(f"action_type must be 'discrete' or 'continuous', got {action_type!r}")
    try:
        if kind in ("lost_sales", "backlog"):
            config = _single_product(kind == "backlog", kwargs)
            sim: Sim = InventorySim(config, num_envs, seed, device)
            low = -np.inf if config.backlog else 0.0
            obs_space = spaces.Box(low, np.inf, (config.state_size,), np.float32)
            if action_type == "discrete":
                return sim, obs_space, spaces.Discrete(config.max_order + 1)
            return sim, obs_space, spaces.Box(0.0, float(config.max_order), (1,), np.float32)
        if action_type == "discrete":
            raise AnewError(f"{env_id} has continuous orders only; drop action_type='discrete'")
        if kind in ("history_replay", "vendor_constraints"):
            if kind == "vendor_constraints":
                defaults = {
                    "general_arrivals": True,
                    "min_order": 10.0,
                    "order_multiple": 5.0,
                    "cost_at": "arrival",
                }
                kwargs = defaults | kwargs
            replay = ReplayConfig(**kwargs)
            sim = DemandHistorySim(replay, num_envs, seed, device)
            obs_space = spaces.Box(0.0, np.inf, (sim.observation_size,), np.float32)
            return sim, obs_space, spaces.Box(0.0, float(replay.max_order), (1,), np.float32)
        capacity_fields = set(CapacityConfig.__dataclass_fields__) - {"replay"}
        capacity_kwargs = {key: kwargs.pop(key) for key in list(kwargs) if key in capacity_fields}
        config = CapacityConfig(replay=ReplayConfig(**({"max_order": 50.0} | kwargs)), **capacity_kwargs)
        sim = CapacitySim(config, num_envs, seed, device)
        obs_space = spaces.Box(0.0, np.inf, (sim.observation_size,), np.float32)
        return (
            sim,
            obs_space,
            spaces.Box(0.0, float(config.replay.max_order), (config.num_products,), np.float32),
        )
    except TypeError as error:  # an unknown keyword: name it and where the options are listed
        raise AnewError(f"bad option for {env_id}: {error}; see anew.envs.inventory_gym.make_sim") from error


def episode_meter(sim: Sim, batch: int, warmup: int) -> EpisodeMeter:
    """The measures each face reports (see ``anew.envs.inventory_measures``)."""
    if isinstance(sim, InventorySim):
        return EpisodeMeter("cost", batch, warmup, sim.config)
    return EpisodeMeter("capacity" if isinstance(sim, CapacitySim) else "reward", batch)


def _to_numpy(info: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    return {key: value.detach().cpu().numpy() for key, value in info.items()}


def render_bars(values: np.ndarray, colors: list[tuple[int, int, int]], height: int = 160) -> np.ndarray:
    """A bar chart as an RGB uint8 frame (one 32-pixel column per value, scaled to the largest)."""
    width = 32 * len(values) + 8
    frame = np.full((height, width, 3), 255, dtype=np.uint8)
    top = max(float(np.max(np.abs(values))), 1.0)
    for i, (value, color) in enumerate(zip(values, colors)):
        bar = round((height - 10) * min(abs(float(value)) / top, 1.0))
        frame[height - 5 - bar : height - 5, 8 + 32 * i : 32 * (i + 1)] = color
    frame[height - 5 :, :] = 0  # baseline
    return frame


def _frame(obs: np.ndarray, info: dict[str, np.ndarray], lanes: int) -> np.ndarray:
    """On-hand (blue), pipeline (grey) and the last demand (red) of the first product."""
    values = list(obs[:lanes]) + [float(np.ravel(info.get("demand", [0.0]))[0])]
    colors = [(40, 90, 200)] + [(150, 150, 150)] * (lanes - 1) + [(210, 50, 50)]
    return render_bars(np.asarray(values, dtype=float), colors)


class InventoryEnv(gym.Env):
    """A single instance of a batched inventory simulator (a batch of one).

    Every step's info holds ``episode_measures`` and ``episode_references`` of the episode so far (a
    time-limit wrapper decides which step ends it); ``measure_warmup`` periods open each episode unmeasured.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 4}

    def __init__(
        self, env_id: str, render_mode: str | None = None, measure_warmup: int = MEASURE_WARMUP, **kwargs: Any
    ):
        if render_mode not in (None, "rgb_array"):
            raise AnewError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.sim, self.observation_space, self.action_space = make_sim(env_id, 1, **kwargs)
        self.meter = episode_meter(self.sim, 1, measure_warmup)
        self.render_mode = render_mode
        self._obs = np.zeros(self.observation_space.shape, np.float32)
        self._info: dict[str, np.ndarray] = {}

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self._obs = self.sim.reset(seed)[0].cpu().numpy()
        self._info = {}
        self.meter.reset()
        return self._obs.copy(), {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        order = torch.as_tensor(np.asarray(action, dtype=np.float32).reshape(1, -1))
        obs, reward, over, info = self.sim.step(order)
        self._obs, self._info = obs[0].cpu().numpy(), _to_numpy(info)
        step_reward = reward.cpu().numpy().astype(np.float64)
        self.meter.record(step_reward, self._info)
        step_info: dict[str, Any] = {key: float(value[0]) for key, value in self._info.items()}
        for key, values in self.meter.info().items():
            step_info[key] = {name: float(value[0]) for name, value in values.items()}
        return self._obs.copy(), float(step_reward[0]), False, bool(over[0]), step_info

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array":
            return None
        return _frame(self._obs, self._info, self.sim.lags)


class InventoryVectorEnv(gym.vector.VectorEnv):
    """The whole batch as a Gymnasium vector env (all instances reset and truncate together).

    ``autoreset_mode``: NEXT_STEP (Gymnasium's default: the step after the last one resets and
    ignores its actions) or SAME_STEP (the last step returns the reset observation and puts the
    final one in ``info["final_obs"]``). The step that ends the episodes adds ``episode_measures`` and
    ``episode_references`` (arrays over the batch).
    """

    metadata: ClassVar[dict[str, Any]] = {
        "render_modes": ["rgb_array"],
        "render_fps": 4,
        "autoreset_mode": AutoresetMode.NEXT_STEP,
    }

    def __init__(
        self,
        env_id: str,
        num_envs: int = 1,
        max_episode_steps: int | None = None,
        render_mode: str | None = None,
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        seed: int | None = None,
        measure_warmup: int = MEASURE_WARMUP,
        **kwargs: Any,
    ):
        self.sim, self.single_observation_space, self.single_action_space = make_sim(
            env_id, num_envs, seed, **kwargs
        )
        self.meter = episode_meter(self.sim, num_envs, measure_warmup)
        self.num_envs = num_envs
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self.max_episode_steps = max_episode_steps
        self.render_mode = render_mode
        mode = AutoresetMode(autoreset_mode)
        if mode not in (AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP):
            raise AnewError(f"autoreset_mode must be next-step or same-step, got {mode.value}")
        self.metadata = {**self.metadata, "autoreset_mode": mode}
        self._needs_reset, self._elapsed = False, 0
        self._obs = np.zeros(self.observation_space.shape, np.float32)
        self._info: dict[str, np.ndarray] = {}

    def reset(
        self, *, seed: int | list[int] | None = None, options: dict | None = None
    ) -> tuple[np.ndarray, dict]:
        if isinstance(seed, (list, tuple)):  # one generator drives the whole batch: its first seed decides
            seed = seed[0]
        self._obs = self.sim.reset(seed).cpu().numpy()
        self._needs_reset, self._elapsed, self._info = False, 0, {}
        self.meter.reset()
        return self._obs.copy(), {}

    def step(self, actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
        no = np.zeros(self.num_envs, dtype=bool)
        if self._needs_reset:  # NEXT_STEP: this step only resets
            obs, _ = self.reset()
            return obs, np.zeros(self.num_envs), no, no.copy(), {}
        obs, reward, over, info = self.sim.step(torch.as_tensor(np.asarray(actions, dtype=np.float32)))
        self._elapsed += 1
        self._obs, self._info = obs.cpu().numpy(), _to_numpy(info)
        rewards = reward.cpu().numpy().astype(np.float64)
        self.meter.record(rewards, self._info)
        truncated = over.cpu().numpy().astype(bool)
        if self.max_episode_steps is not None and self._elapsed >= self.max_episode_steps:
            truncated[:] = True
        infos: dict[str, Any] = dict(self._info)
        obs_out = self._obs.copy()
        if truncated.all():
            infos |= self.meter.info()
            if self.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP:
                infos["final_obs"], infos["_final_obs"] = obs_out, truncated.copy()
                obs_out, _ = self.reset()
            else:
                self._needs_reset = True
        return obs_out, rewards, no, truncated, infos

    def render(self) -> tuple[np.ndarray, ...] | None:
        """A frame of the first instance only (a batch may hold thousands)."""
        if self.render_mode != "rgb_array":
            return None
        first = {key: value[:1] for key, value in self._info.items()}
        return (_frame(self._obs[0], first, self.sim.lags),)


def register_inventory_envs() -> None:
    """Register the five inventory envs with Gymnasium (idempotent)."""
    for env_id, (_, max_steps) in ENV_IDS.items():
        if env_id in gym.registry:
            continue
        gym.register(
            id=env_id,
            entry_point="anew.envs.inventory_gym:InventoryEnv",
            vector_entry_point="anew.envs.inventory_gym:InventoryVectorEnv",
            max_episode_steps=max_steps,
            kwargs={"env_id": env_id},
        )
