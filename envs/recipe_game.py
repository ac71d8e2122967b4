"""``anew/RecipeGame-SOM-v0``: the competitive recipe game of SOM (Raileanu et al., 2018), batched.

The paper's exact rules are not verified (reference §2.2); these are the simplest rules that keep its
point, with the key numbers as parameters (see :class:`RecipeGameSim`).
"""

from __future__ import annotations

import itertools
from typing import Any

import gymnasium as gym
import numpy as np

from anew.envs import som_grid as grid
from anew.envs.multiagent import TeamSim
from anew.errors import AnewError


class RecipeGameSim(TeamSim):
    """A batch of recipe races: two players, hidden recipes, one scarce shared ingredient, win or lose.

    Rules (experimental; the paper's are unverified):

    - ``rows`` × ``columns`` grid (5 × 5) holding ``items_per_type`` items (1) of each of
      ``num_ingredients`` ingredient types (4), on distinct cells drawn uniformly, away from the players.
    - A recipe is a set of ``recipe_size`` distinct types (2): goal ``g`` is ``recipes[g]``, all
      combinations in lexicographic order (6 by default). Each player's hidden recipe is drawn so that
      the two recipes differ and share exactly ``shared_ingredients`` types (1): with one item per type
      the shared one is contested, and whoever takes it first is the only one who can still finish.
      Knowing which of one's ingredients the other also needs (its goal) says which to fetch first.
    - Players alternate, ``player_0`` first, ``episode_length`` moves in total (30). Actions and
      blocking as in the coin game: 0 up, 1 down, 2 left, 3 right, 4 stand; a move off the grid or
      into the other player's cell leaves the mover in place. Entering an item's cell picks it up only
      if the mover's recipe needs that type and it does not hold one yet; other items stay (walkable).
    - The first player to hold its whole recipe wins: +1 to it, −1 to the other, and the game ends
      (``terminated``). If nobody has finished after ``episode_length`` moves it ends in a draw (0, 0).

    Observation of each slot (float32 ``[2 + 3K + G, rows, columns]``, channels first): self, other,
    own held types (K constant planes), the other's held types (K), items of type 0..K−1 (K), own
    recipe as G constant one-hot planes. ``swap_index`` exchanges self/other and the two held blocks
    (the goal planes stay; a SOM agent overwrites them). ``slot_info()["goal"]`` is the true recipe index.

    Layout (``reset(options={"layout": L})``, L a dict or one dict per game reset):
    ``{"goals": [recipe0, recipe1], "players": [[r, c], [r, c]], "items": [[r, c, type], …]}``; goals
    are indices into ``recipes`` (any two different ones); optional ``"held": [[types], [types]]``.
    """

    def __init__(
        self,
        num_envs: int,
        seed: int | None = None,
        rows: int = 5,
        columns: int = 5,
        num_ingredients: int = 4,
        recipe_size: int = 2,
        shared_ingredients: int = 1,
        items_per_type: int = 1,
        episode_length: int = 30,
    ):
        super().__init__(num_envs, seed)
        if min(rows, columns, num_ingredients, recipe_size, items_per_type, episode_length) < 1:
            raise AnewError("recipe game: sizes, counts and episode_length must be >= 1")
        if (
            not 0 <= shared_ingredients < recipe_size
            or 2 * recipe_size - shared_ingredients > num_ingredients
        ):
            raise AnewError(
                f"recipe game: two recipes of {recipe_size} types sharing {shared_ingredients} need "
                f"0 <= shared < recipe_size and 2*recipe_size - shared <= num_ingredients ({num_ingredients})"
            )
        if 2 + num_ingredients * items_per_type > rows * columns:
            raise AnewError(f"recipe game: the items and players do not fit on a {rows}x{columns} grid")
        self.shape = (rows, columns)
        self.num_ingredients, self.items_per_type = num_ingredients, items_per_type
        self.recipes = np.array(list(itertools.combinations(range(num_ingredients), recipe_size)))
        self.needs = np.zeros((len(self.recipes), num_ingredients), dtype=bool)
        self.needs[np.arange(len(self.recipes))[:, None], self.recipes] = True
        overlap = self.needs.astype(np.int64) @ self.needs.T.astype(np.int64)
        self.goal_pairs = np.argwhere(
            (overlap == shared_ingredients) & ~np.eye(len(self.recipes), dtype=bool)
        )
        self.num_goals = len(self.recipes)
        self.agents = ("player_0", "player_1")
        self.max_steps = episode_length
        k = num_ingredients
        channels = 2 + 3 * k + self.num_goals
        self.observation_space = gym.spaces.Box(0.0, 1.0, (channels, rows, columns), np.float32)
        self.action_space = gym.spaces.Discrete(grid.NUM_ACTIONS)
        self.swap_index = grid.swap_index(channels, [(0, 1)] + [(2 + i, 2 + k + i) for i in range(k)])
        self.goals = np.zeros((num_envs, 2), dtype=np.int64)
        self.pos = np.zeros((num_envs, 2, 2), dtype=np.int64)
        self.items = np.full((num_envs, rows, columns), -1, dtype=np.int64)  # type, -1 = none
        self.held = np.zeros((num_envs, 2, k), dtype=bool)
        self.t = np.zeros(num_envs, dtype=np.int64)
        self.reset()

    # ---------------------------------------------------------------- episodes
    def reset(self, mask: np.ndarray | None = None, options: dict[str, Any] | None = None) -> None:
        games = np.flatnonzero(np.ones(self.num_envs, bool) if mask is None else mask)
        self.held[games] = False
        self.t[games] = 0
        self.items[games] = -1
        layout = (options or {}).get("layout")
        if layout is not None:
            for game, item in zip(games, grid.layouts_for(layout, len(games)), strict=True):
                self._set_layout(game, item)
            return
        n, total = len(games), self.num_ingredients * self.items_per_type
        self.goals[games] = self.goal_pairs[self.rng.integers(len(self.goal_pairs), size=n)]
        cells = grid.sample_cells(self.rng, n, np.ones(self.shape, bool), 2 + total)
        self.pos[games] = cells[:, :2]
        types = np.arange(total) // self.items_per_type
        self.items[games[:, None], cells[:, 2:, 0], cells[:, 2:, 1]] = types

    def _set_layout(self, game: int, layout: dict[str, Any]) -> None:
        missing = {"goals", "players", "items"} - set(layout)
        if missing:
            raise AnewError(
                f"recipe layout lacks {sorted(missing)}; see RecipeGameSim's docstring for the format"
            )
        items = grid.check_cells(layout["items"], self.shape, "items", width=3)
        players = grid.check_cells(layout["players"], self.shape, "players")
        if len(players) != 2 or ((items[:, 2] < 0) | (items[:, 2] >= self.num_ingredients)).any():
            raise AnewError(
                f"recipe layout needs two player cells and item types in 0..{self.num_ingredients - 1}"
            )
        self.goals[game] = grid.check_goals(layout["goals"], self.num_goals)
        self.pos[game] = players
        self.items[game, items[:, 0], items[:, 1]] = items[:, 2]
        for player, types in enumerate(layout.get("held", [[], []])):
            self.held[game, player, np.asarray(types, dtype=np.int64)] = True

    def layout(self, index: int = 0) -> dict[str, Any]:
        """Game ``index`` now, in the layout format (items in row-major order)."""
        rows, cols = np.nonzero(self.items[index] >= 0)
        return {
            "goals": self.goals[index].tolist(),
            "players": self.pos[index].tolist(),
            "items": [
                [r, c, int(self.items[index, r, c])]
                for r, c in zip(rows.tolist(), cols.tolist(), strict=True)
            ],
            "held": [np.flatnonzero(self.held[index, p]).tolist() for p in range(2)],
        }

    # ---------------------------------------------------------------- stepping
    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        actions = grid.check_actions(actions, self.num_envs)
        games, mover = np.arange(self.num_envs), self.t % 2
        start, target, allowed = grid.mover_target(self.pos, mover, actions, self.shape)
        new = np.where(allowed[:, None], target, start)
        kind = self.items[games, new[:, 0], new[:, 1]]
        wanted = self.needs[self.goals[games, mover], np.maximum(kind, 0)] & (kind >= 0)
        take = wanted & ~self.held[games, mover, np.maximum(kind, 0)]
        self.held[games[take], mover[take], kind[take]] = True
        self.items[games[take], new[take, 0], new[take, 1]] = -1
        self.pos[games, mover] = new
        self.t += 1
        won = self.complete()[games, mover]
        rewards = np.zeros((self.num_envs, 2), dtype=np.float32)
        rewards[games[won], mover[won]] = 1.0
        rewards[games[won], 1 - mover[won]] = -1.0
        return rewards, won | (self.t >= self.max_steps), np.zeros(self.num_envs, dtype=bool)

    def complete(self) -> np.ndarray:
        """``[B, 2]`` whether each player holds its whole recipe."""
        return (self.held | ~self.needs[self.goals]).all(axis=-1)

    def observe(self) -> np.ndarray:
        k = self.num_ingredients
        obs = grid.new_observation(self.num_envs, self.observation_space.shape[0], self.shape, self.pos)
        obs[:, :, 2 : 2 + k] = self.held[..., None, None]  # own held types, constant planes
        obs[:, :, 2 + k : 2 + 2 * k] = self.held[:, ::-1, :, None, None]  # the other's
        obs[:, :, 2 + 2 * k : 2 + 3 * k] = (self.items[:, None] == np.arange(k)[:, None, None])[:, None]
        return grid.write_goal_planes(obs, self.goals, self.num_goals)

    def active(self) -> np.ndarray:
        return np.ones((self.num_envs, 2), dtype=bool)

    def to_move(self) -> np.ndarray:
        return np.stack([self.t % 2 == 0, self.t % 2 == 1], axis=1)

    def slot_info(self) -> dict[str, np.ndarray]:
        return {"goal": self.goals.copy()}

    def episode_metrics(self) -> dict[str, np.ndarray]:
        """``winner``: 0 or 1, or -1 while nobody has finished (a draw at the end)."""
        complete = self.complete()
        return {"winner": np.where(complete.any(axis=1), complete.argmax(axis=1), -1)}

    def state_arrays(self) -> dict[str, np.ndarray]:
        return {"goals": self.goals, "pos": self.pos, "items": self.items, "held": self.held, "t": self.t}

    # ---------------------------------------------------------------- helpers
    def agent_facts(self) -> dict[str, Any]:
        return {"swap_index": [int(i) for i in self.swap_index], "num_goals": int(self.num_goals)}

    def swap_perspective(self, obs: np.ndarray) -> np.ndarray:
        """The observation as the other player sees the board: self/other and the held blocks exchanged,
        items and goal planes unchanged. Swapping twice is the identity."""
        return grid.swap_channels(obs, self.swap_index)

    def split_observation(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(board [..., 2 + 3K, H, W], own recipe one-hot [..., G])``."""
        return grid.split_goal(obs, self.num_goals)

    def render(self, index: int = 0, scale: int = 24) -> np.ndarray:
        """The board, and under it one strip per player showing the types it holds."""
        rows, cols = self.shape
        image = np.concatenate(
            [grid.blank_board(self.shape, scale), np.full((scale, cols * scale, 3), 255, np.uint8)]
        )
        for r, c in zip(*np.nonzero(self.items[index] >= 0), strict=True):
            grid.paint(image, (r, c), grid.ITEM_COLOURS[self.items[index, r, c] % 6], scale, inset=scale // 4)
        for player in range(2):
            grid.paint(image, self.pos[index, player], grid.PLAYER_COLOURS[player], scale, inset=1)
            for slot, kind in enumerate(np.flatnonzero(self.held[index, player])):
                top, left = rows * scale + player * (scale // 2), slot * (scale // 2)
                image[top : top + scale // 2, left : left + scale // 2] = grid.ITEM_COLOURS[kind % 6]
                image[top : top + 2, left : left + scale // 2] = grid.PLAYER_COLOURS[player]
        return image
