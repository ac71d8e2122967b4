"""MinAtar (Young & Tian, 2019) games as Gymnasium environments: Atari-like experiments on a CPU.

Wraps the ``minatar`` package's ``Environment`` (its sticky actions and game logic) with:

- observations channels first, ``uint8`` 0/1 of shape (C, 10, 10) (MinAtar gives (10, 10, C) bool),
  so the same CNN code serves Atari frame stacks and MinAtar grids;
- the game's minimal action set by default (Breakout 3, Asterix 5, Freeway 3, Seaquest 6,
  SpaceInvaders 4 actions); ``minimal_action_set=False`` gives MinAtar's full 6 actions, the
  setting of the MinAtar paper;
- sticky actions with MinAtar's default probability 0.1, reset to no-op at every episode start (as
  ALE does; MinAtar's own ``Environment`` carries the last action over into the next episode);
- Gymnasium seeding: ``reset(seed=s)`` reseeds the game's random state from ``self.np_random``;
- ``render_mode="rgb_array"``: each cell drawn as a 16x16 block, one colour per channel.

Episode length. MinAtar itself caps nothing: an episode ends at game over. Freeway's game over
comes after exactly 2,501 steps (its clock is part of the game, so it stays a termination);
Breakout, Asterix, Seaquest and SpaceInvaders can go on forever under a good enough policy (bricks
and waves refill). The registered ids therefore add a time limit of 10,000 steps (a truncation),
far above the episode lengths agents reach in published MinAtar budgets, so it changes no
reported score but keeps evaluation of a near-perfect policy finite. Gym-MinAtar uses the same cap.
"""

from __future__ import annotations

import colorsys
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from anew.errors import AnewError

# Our game name -> the module name inside ``minatar.environments``.
MINATAR_GAMES = {
    "Breakout": "breakout",
    "Asterix": "asterix",
    "Freeway": "freeway",
    "Seaquest": "seaquest",
    "SpaceInvaders": "space_invaders",
}
MINATAR_MAX_EPISODE_STEPS = 10_000
CELL_PIXELS = 16


def _palette(num_channels: int) -> np.ndarray:
    """Black background plus one evenly spaced hue per channel, as uint8 RGB (C + 1, 3)."""
    colours = [(0.0, 0.0, 0.0)] + [
        colorsys.hsv_to_rgb(k / num_channels, 0.8, 1.0) for k in range(num_channels)
    ]
    return (np.array(colours) * 255).round().astype(np.uint8)


class MinAtarEnv(gym.Env):
    """One MinAtar game; see the module docstring for the conventions."""

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 15}

    def __init__(
        self,
        game: str,
        render_mode: str | None = None,
        sticky_action_prob: float = 0.1,
        difficulty_ramping: bool = True,
        minimal_action_set: bool = True,
    ):
        if game not in MINATAR_GAMES:
            raise AnewError(f"unknown MinAtar game {game!r}: choose one of {', '.join(MINATAR_GAMES)}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise AnewError(f"MinAtar render_mode {render_mode!r} is not supported: use 'rgb_array' or None")
        if not 0.0 <= sticky_action_prob <= 1.0:
            raise AnewError(f"sticky_action_prob must be in [0, 1], got {sticky_action_prob}")
        try:
            from minatar import Environment
        except ImportError as error:
            raise AnewError(
                "MinAtar is not installed: pip install 'anew[minatar]' (or pip install minatar)"
            ) from error

        self.game = game
        self.render_mode = render_mode
        self._game = Environment(
            MINATAR_GAMES[game], sticky_action_prob=sticky_action_prob, difficulty_ramping=difficulty_ramping
        )
        self._action_set = (
            list(self._game.minimal_action_set())
            if minimal_action_set
            else list(range(self._game.num_actions()))
        )
        height, width, channels = self._game.state_shape()
        self.action_space = spaces.Discrete(len(self._action_set))
        self.observation_space = spaces.Box(0, 1, shape=(channels, height, width), dtype=np.uint8)
        self._colours = _palette(channels)
        self._game_seeded = False

    def _observation(self) -> np.ndarray:
        return np.ascontiguousarray(self._game.state().transpose(2, 0, 1), dtype=np.uint8)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        if seed is not None or not self._game_seeded:
            # One draw from the Gymnasium generator seeds the game's RandomState (sticky actions and
            # spawns), so reset(seed=s) fixes the whole episode and reset() continues the stream.
            self._game.seed(int(self.np_random.integers(2**32 - 1)))
            self._game_seeded = True
        self._game.reset()
        self._game.last_action = 0  # sticky actions start from no-op, as in ALE
        return self._observation(), {}

    def step(self, action):
        if not self.action_space.contains(action):
            raise ValueError(f"invalid action {action!r} for {self.action_space}")
        reward, terminated = self._game.act(self._action_set[int(action)])
        return self._observation(), float(reward), bool(terminated), False, {}

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array":
            return None
        state = self._game.state()  # (H, W, C) bool
        # Colour index per cell: 1 + the highest set channel, 0 for empty cells.
        index = np.where(state.any(-1), state.shape[-1] - np.argmax(state[..., ::-1], axis=-1), 0)
        image = self._colours[index]
        return np.repeat(np.repeat(image, CELL_PIXELS, axis=0), CELL_PIXELS, axis=1)


def minatar_env_id(game: str) -> str:
    """The registered id of a MinAtar game, e.g. ``anew/MinAtar-Breakout-v0``."""
    return f"anew/MinAtar-{game}-v0"


def register_minatar_envs() -> None:
    """Register ``anew/MinAtar-<Game>-v0`` for the five games (idempotent; does not import minatar)."""
    for game in MINATAR_GAMES:
        env_id = minatar_env_id(game)
        if env_id in gym.registry:
            continue
        gym.register(
            id=env_id,
            entry_point="anew.envs.minatar:MinAtarEnv",
            kwargs={"game": game},
            max_episode_steps=MINATAR_MAX_EPISODE_STEPS,
        )
