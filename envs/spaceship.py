"""Spaceship (PD-VF, Raileanu et al. 2020): steer a charged ship out of a room through its top wall.

Rules (reference notes section 3.3, from ``myspaceship.py`` of rraileanu/policy-dynamics-value-functions):

- Room [0, 5]^2; the ship (a unit charge) starts at (2.5, 0.2). Two charges sit at P1 = (0, 0) and
  P2 = (0, 5) with q1 = 1.5 cos(theta), q2 = 1.5 sin(theta). Environment k in 0..19 draws
  theta ~ U[2 pi k / 20, 2 pi (k + 1) / 20] at *every* reset.
- Force F(p) = sum_i q_i (p - P_i) / (|p - P_i|^3 + 0.1). Step: p <- p + (a + 5 F(p)) * 0.045.
- The episode ends, checked in this order, on: the door (y > 5 and 0 < x < 5: the whole top wall);
  another wall (x < 0, x > 5, y < 0 or y > 5); a charge hit (min_i |p - P_i| < 0.2); t >= 50. The
  first three are ``terminated``, the time limit is ``truncated``. The final step, whichever it is,
  pays exp(-3 |p - (2.5, 5)|); every other step pays 0 (as the reference does).

Choices, each differing from a literal copy of the reference and documented here:

- ``force="analytic"`` (default, the paper's model). ``force="grid"`` is the reference code's force
  (``spaceship_force.py``): tabulated on the 0.1 grid 0..4.9 and bilinearly interpolated, clamped to the edge values outside it
  (scipy's ``RegularGridInterpolator`` on clipped points; the reference's ``interp2d`` is gone from
  SciPy). The force is linear in the charges, so we tabulate the two unit-charge fields once.
- Actions are NOT clipped to the action space Box(-3, 3), like the reference.
- The observation is the float32 position. A final position may lie outside the room, so the
  observation space is the room widened by ``OBS_MARGIN`` = 2 on every side: one step moves the ship
  by at most 0.045 * (3 sqrt(2) + 5 * 7.35) < 1.9 for actions inside the action space, so such a
  position is always reported exactly. Positions beyond the margin (actions outside the action
  space) are reported clipped to it; the true position stays in ``SpaceshipSim.position``.
- ``reset(options={"env_index": 0})`` selects environment 0 (the reference's falsy check does not).

Randomness: each batch slot has its own key (from its seed) and episode counter, and episode e's
draws are SplitMix64 outputs at counter e. So a slot's episodes depend on its seed only, the batch
draws without a per-env Python loop, and a batch seeded ``s`` equals single envs seeded ``s + i``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space

from anew.envs.spaceship_force import CHARGE_POSITIONS, ROOM_SIZE, make_force
from anew.envs.spaceship_render import draw_spaceship
from anew.errors import AnewError

NUM_DYNAMICS = 20
TRAIN_ENVS = range(15)
TEST_ENVS = range(15, 20)
START = np.array([2.5, 0.2])
GOAL = np.array([2.5, 5.0])
CHARGE_SCALE = 1.5
FORCE_GAIN = 5.0
STEP_SCALE = 0.045  # 0.3 ** 2 / 2
HIT_RADIUS = 0.2
REWARD_SHARPNESS = 3.0
MAX_STEPS = 50
ACTION_LIMIT = 3.0
OBS_MARGIN = 2.0
OUTCOMES = ("running", "door", "wall", "charge", "time")  # codes 0..4 of SpaceshipSim.outcome


def theta_bucket(env_index: int) -> tuple[float, float]:
    """The interval theta is drawn from in environment ``env_index``."""
    width = 2 * np.pi / NUM_DYNAMICS
    return env_index * width, (env_index + 1) * width


def charges_of(theta: np.ndarray) -> np.ndarray:
    """Charges (q1, q2) = 1.5 (cos theta, sin theta), shape [..., 2]."""
    return CHARGE_SCALE * np.stack([np.cos(theta), np.sin(theta)], axis=-1)


def check_env_index(env_index: Any) -> int:
    """``env_index`` as an int in 0..19, or an AnewError naming the range."""
    if isinstance(env_index, (bool, np.bool_)) or not isinstance(env_index, (int, np.integer)):
        raise AnewError(f"Spaceship env_index must be an integer in 0..{NUM_DYNAMICS - 1}, got {env_index!r}")
    if not 0 <= int(env_index) < NUM_DYNAMICS:
        raise AnewError(f"Spaceship env_index must be in 0..{NUM_DYNAMICS - 1}, got {env_index}")
    return int(env_index)


def _per_slot_indices(env_index: int | Sequence[int], num_envs: int) -> np.ndarray:
    if isinstance(env_index, (int, np.integer)):
        return np.full(num_envs, check_env_index(env_index), dtype=np.int64)
    indices = [check_env_index(k) for k in env_index]
    if len(indices) != num_envs:
        raise AnewError(
            f"Spaceship got {len(indices)} env indices for {num_envs} envs; pass one per env or an int"
        )
    return np.asarray(indices, dtype=np.int64)


_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def splitmix64(x: np.ndarray) -> np.ndarray:
    """The SplitMix64 output function (Steele et al. 2014) on a uint64 array: a well-mixed 64-bit hash."""
    with np.errstate(over="ignore"):
        z = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


class SpaceshipSim:
    """A batch of Spaceship episodes stepped at once; state arrays carry a leading batch axis.

    ``env_index``: one int for all slots or one per slot. ``env_pool``: if given, every reset of a slot
    draws its environment uniformly from this pool instead (PPOall's training distribution). The sim
    never resets by itself: callers reset finished slots with ``reset(mask)``.
    """

    def __init__(
        self,
        num_envs: int,
        seed: int | Sequence[int] | None = None,
        env_index: int | Sequence[int] = 0,
        force: str = "analytic",
        env_pool: Sequence[int] | None = None,
    ):
        if num_envs < 1:
            raise AnewError(f"Spaceship num_envs must be at least 1, got {num_envs}")
        self.num_envs = num_envs
        self.force_name, self.force = force, make_force(force)
        self.env_index = _per_slot_indices(env_index, num_envs)
        self.env_pool = self._pool(env_pool)
        self.position = np.tile(START, (num_envs, 1))
        self.theta = np.zeros(num_envs)
        self.charges = np.zeros((num_envs, 2))
        self.t = np.zeros(num_envs, dtype=np.int64)
        self.outcome = np.zeros(num_envs, dtype=np.int64)
        self.key = np.zeros(num_envs, dtype=np.uint64)
        self.episode = np.zeros(num_envs, dtype=np.uint64)  # episodes started since the slot was seeded
        self.seed(seed)
        self.reset()

    @staticmethod
    def _pool(env_pool: Sequence[int] | None) -> np.ndarray | None:
        if env_pool is None:
            return None
        pool = np.asarray([check_env_index(k) for k in env_pool], dtype=np.int64)
        if pool.size == 0:
            raise AnewError("Spaceship env_pool is empty; pass environment indices, e.g. range(15)")
        return pool

    def seed(self, seed: int | Sequence[int] | None) -> None:
        """Key every slot: slot i of an int seed s uses s + i (Gymnasium's vector convention); None = OS entropy."""
        if seed is None:
            seeds = np.random.SeedSequence().generate_state(self.num_envs, np.uint64)
        elif isinstance(seed, (int, np.integer)):
            seeds = np.uint64(int(seed) % 2**64) + np.arange(self.num_envs, dtype=np.uint64)
        else:
            seeds = np.asarray([int(s) % 2**64 for s in seed], dtype=np.uint64)
            if seeds.shape != (self.num_envs,):
                raise AnewError(
                    f"Spaceship got {seeds.size} seeds for {self.num_envs} envs; pass one per env"
                )
        self.key = splitmix64(seeds + _GOLDEN)
        self.episode[:] = 0

    def set_env_index(self, env_index: int | Sequence[int]) -> None:
        """Fix the environment of every slot (takes effect at the next reset; drops any ``env_pool``)."""
        self.env_index = _per_slot_indices(env_index, self.num_envs)
        self.env_pool = None

    def _uniforms(self, slots: np.ndarray, draw: int) -> np.ndarray:
        """Uniform [0, 1) number ``draw`` (0 or 1) of the current episode of each slot in ``slots``."""
        counter = self.episode[slots] * np.uint64(2) + np.uint64(draw + 1)
        with np.errstate(over="ignore"):
            bits = splitmix64(self.key[slots] + counter * _GOLDEN)
        return (bits >> np.uint64(11)).astype(np.float64) * 2.0**-53

    def reset(self, mask: np.ndarray | None = None) -> np.ndarray:
        """Start new episodes in all slots or in the masked ones; returns every slot's observation."""
        slots = np.arange(self.num_envs) if mask is None else np.flatnonzero(mask)
        if self.env_pool is not None:
            picks = (self._uniforms(slots, 1) * len(self.env_pool)).astype(np.int64)
            self.env_index[slots] = self.env_pool[picks]
        self.theta[slots] = (self.env_index[slots] + self._uniforms(slots, 0)) * (2 * np.pi / NUM_DYNAMICS)
        self.charges[slots] = charges_of(self.theta[slots])
        self.position[slots] = START
        self.t[slots] = 0
        self.outcome[slots] = 0
        self.episode[slots] += np.uint64(1)
        return self.observation()

    def observation(self) -> np.ndarray:
        """float32 positions [B, 2], clipped to the observation box (see the module docstring)."""
        return np.clip(self.position, -OBS_MARGIN, ROOM_SIZE + OBS_MARGIN).astype(np.float32)

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Advance every slot one step: (observation [B, 2], reward [B], terminated [B], truncated [B])."""
        actions = np.asarray(actions, dtype=np.float64).reshape(self.num_envs, 2)
        self.position = (
            self.position + (actions + FORCE_GAIN * self.force(self.position, self.charges)) * STEP_SCALE
        )
        self.t += 1
        x, y = self.position[:, 0], self.position[:, 1]
        door = (y > ROOM_SIZE) & (x > 0) & (x < ROOM_SIZE)
        wall = (x < 0) | (x > ROOM_SIZE) | (y < 0) | (y > ROOM_SIZE)
        gaps = self.position[:, None, :] - CHARGE_POSITIONS[None]
        hit = np.einsum("bcd,bcd->bc", gaps, gaps).min(axis=1) < HIT_RADIUS**2
        timeout = self.t >= MAX_STEPS
        self.outcome = np.select([door, wall, hit, timeout], [1, 2, 3, 4], default=0)
        terminated = door | wall | hit
        truncated = timeout & ~terminated
        distance = np.linalg.norm(self.position - GOAL, axis=1)
        reward = np.where(terminated | truncated, np.exp(-REWARD_SHARPNESS * distance), 0.0)
        return self.observation(), reward, terminated, truncated

    def state_dict(self) -> dict[str, Any]:
        """The whole state as JSON-able lists (exact: floats round-trip through JSON)."""
        names = ("position", "theta", "charges", "t", "outcome", "env_index", "key", "episode")
        state: dict[str, Any] = {name: getattr(self, name).tolist() for name in names}
        state["env_pool"] = None if self.env_pool is None else self.env_pool.tolist()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> np.ndarray:
        """Restore ``state_dict``'s state; returns the observations."""
        for name, dtype in (("position", np.float64), ("theta", np.float64), ("charges", np.float64)):
            setattr(self, name, np.asarray(state[name], dtype=dtype))
        for name in ("t", "outcome", "env_index"):
            setattr(self, name, np.asarray(state[name], dtype=np.int64))
        self.key = np.asarray(state["key"], dtype=np.uint64)
        self.episode = np.asarray(state["episode"], dtype=np.uint64)
        self.env_pool = self._pool(state["env_pool"])
        return self.observation()


def _spaces() -> tuple[spaces.Box, spaces.Box]:
    observation = spaces.Box(-OBS_MARGIN, ROOM_SIZE + OBS_MARGIN, (2,), np.float32)
    return observation, spaces.Box(-ACTION_LIMIT, ACTION_LIMIT, (2,), np.float32)


def _check_render_mode(render_mode: str | None) -> None:
    if render_mode not in (None, "rgb_array"):
        raise AnewError(f"Spaceship render_mode must be None or 'rgb_array', got {render_mode!r}")


class SpaceshipEnv(gym.Env):
    """One Spaceship episode at a time: a Gymnasium view over a ``SpaceshipSim`` batch of one.

    ``reset(options={"env_index": k})`` switches to environment k for this and later resets.
    ``info`` holds ``env_index``, ``theta``, ``charges`` (q1, q2), ``t`` and ``outcome`` (a name of OUTCOMES).
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(
        self,
        env_index: int = 0,
        force: str = "analytic",
        render_mode: str | None = None,
        env_pool: Sequence[int] | None = None,
    ):
        _check_render_mode(render_mode)
        self.sim = SpaceshipSim(1, env_index=env_index, force=force, env_pool=env_pool)
        self.observation_space, self.action_space = _spaces()
        self.render_mode = render_mode

    def _info(self) -> dict[str, Any]:
        sim = self.sim
        return {
            "env_index": int(sim.env_index[0]),
            "theta": float(sim.theta[0]),
            "charges": sim.charges[0].copy(),
            "t": int(sim.t[0]),
            "outcome": OUTCOMES[int(sim.outcome[0])],
        }

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        if seed is not None:
            self.sim.seed([seed])
        if options is not None and options.get("env_index") is not None:
            self.sim.set_env_index(check_env_index(options["env_index"]))
        return self.sim.reset()[0], self._info()

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        obs, reward, terminated, truncated = self.sim.step(np.asarray(action).reshape(1, 2))
        return obs[0], float(reward[0]), bool(terminated[0]), bool(truncated[0]), self._info()

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array":
            return None
        return draw_spaceship(self.sim.position[0], self.sim.charges[0])


class SpaceshipVectorEnv(gym.vector.VectorEnv):
    """A whole ``SpaceshipSim`` batch as a Gymnasium vector env (SAME_STEP autoreset, no per-env loop).

    A finished slot is reset inside ``step``; its last observation is in ``info["final_obs"]`` (a float32
    [B, 2] array, not Gymnasium's object array: rows where ``info["_final_obs"]`` is False repeat the
    returned observation) and its episode's theta, env index and outcome code in ``info["final_info"]``.
    ``reset(seed=s)`` seeds slot i with s + i (the first ``reset()`` uses the constructor's ``seed``);
    ``options={"env_index": k or [k_i]}`` fixes the envs.
    ``state_dict`` / ``load_state_dict`` save and restore the batch exactly (for resumable runs).
    """

    metadata: ClassVar[dict[str, Any]] = {
        "render_modes": ["rgb_array"],
        "render_fps": 10,
        "autoreset_mode": AutoresetMode.SAME_STEP,
    }

    def __init__(
        self,
        num_envs: int = 1,
        env_index: int | Sequence[int] = 0,
        seed: int | Sequence[int] | None = None,
        force: str = "analytic",
        env_pool: Sequence[int] | None = None,
        render_mode: str | None = None,
    ):
        _check_render_mode(render_mode)
        self.sim = SpaceshipSim(num_envs, seed, env_index, force, env_pool)
        self.num_envs = num_envs
        self.single_observation_space, self.single_action_space = _spaces()
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self.render_mode = render_mode
        self._initial_seed = seed  # the first reset() starts the constructor's seeded episodes

    def _info(self) -> dict[str, Any]:
        return {"env_index": self.sim.env_index.copy(), "theta": self.sim.theta.copy()}

    def reset(
        self, *, seed: int | Sequence[int] | None = None, options: dict | None = None
    ) -> tuple[np.ndarray, dict]:
        if seed is None:
            seed = self._initial_seed
        self._initial_seed = None
        if seed is not None:
            self.sim.seed(seed)
        if options is not None and options.get("env_index") is not None:
            self.sim.set_env_index(options["env_index"])
        return self.sim.reset(), self._info()

    def step(self, actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
        obs, reward, terminated, truncated = self.sim.step(actions)
        done = terminated | truncated
        if not done.any():
            return obs, reward, terminated, truncated, self._info()
        final_info = {
            "theta": self.sim.theta.copy(),
            "env_index": self.sim.env_index.copy(),
            "outcome": self.sim.outcome.copy(),
        }
        obs_after = self.sim.reset(done)
        info = self._info()
        info.update(final_obs=obs, _final_obs=done, final_info=final_info, _final_info=done)
        return obs_after, reward, terminated, truncated, info

    def state_dict(self) -> dict[str, Any]:
        return self.sim.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> np.ndarray:
        return self.sim.load_state_dict(state)

    def render(self) -> tuple[np.ndarray, ...] | None:
        """A frame of the first slot only (a batch may hold thousands)."""
        if self.render_mode != "rgb_array":
            return None
        return (draw_spaceship(self.sim.position[0], self.sim.charges[0]),)


def register_spaceship_envs() -> None:
    """Register ``anew/Spaceship-v0`` (no Gymnasium time limit: the env truncates itself at t = 50)."""
    if "anew/Spaceship-v0" in gym.registry:
        return
    gym.register(
        id="anew/Spaceship-v0",
        entry_point="anew.envs.spaceship:SpaceshipEnv",
        vector_entry_point="anew.envs.spaceship:SpaceshipVectorEnv",
        max_episode_steps=None,
    )
