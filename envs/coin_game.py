"""``anew/CoinGame-SOM-v0``: the cooperative coin game of SOM (Raileanu et al., 2018), batched.

The rules are OpenSpiel's ``coin_game`` (whose header says it follows the SOM paper), checked move by
move against ``pyspiel`` in ``tests/test_coin_game_openspiel.py``. Replaying an OpenSpiel game: build
the state's layout with :func:`layout_from_openspiel` and pass it as ``reset(options={"layout": …})``.
"""

from __future__ import annotations

import re
from typing import Any

import gymnasium as gym
import numpy as np

from anew.envs import som_grid as grid
from anew.envs.multiagent import TeamSim
from anew.errors import AnewError


def swap_perspective(obs: np.ndarray) -> np.ndarray:
    """The coin-game observation ``[..., C, H, W]`` as the other player sees the board: channels "self"
    and "other" exchanged; coins and the goal planes unchanged (a SOM agent puts its estimate of the
    other's goal there, :func:`anew.envs.som_grid.with_goal`). Swapping twice is the identity."""
    return grid.swap_channels(obs, grid.swap_index(np.shape(obs)[-3], [(0, 1)]))


def split_observation(obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(board [..., 2 + C, H, W], own goal one-hot [..., C])``; C colours give 2 + 2C channels."""
    return grid.split_goal(obs, (np.shape(obs)[-3] - 2) // 2)


class CoinGameSim(TeamSim):
    """A batch of coin games: two players, hidden goal colours, alternating moves, shared terminal reward.

    Rules (OpenSpiel ``coin_game``, same parameter names and defaults):

    - ``rows`` × ``columns`` grid (8 × 8); ``2 + num_extra_coin_colors`` coin colours (3), with
      ``num_coins_per_color`` coins each (4). Each player's goal colour is drawn without replacement
      (the goals always differ). Players, then coins, are put on distinct cells drawn uniformly.
    - Players alternate, ``player_0`` first; ``episode_length`` moves in total (20, i.e. 10 each).
      Actions: 0 up, 1 down, 2 left, 3 right, 4 stand. A move off the grid or into the other player's
      cell leaves the mover in place; entering a coin's cell collects it.
    - At the end both players get ``R = N_self² + N_other² − N_bad²``: N_self and N_other count the
      coins of the player's and the other's goal colour collected by either player; N_bad counts every
      other coin collected (the square of the total, as OpenSpiel computes it: with more than one
      extra colour this differs from the reference's sum of squares per colour). The goals differ, so
      R is the same for both: R = N_g1² + N_g2² − N_bad², at most 2·(per colour)² = 32.

    Observation of each slot (float32 ``[2 + 2C, rows, columns]``, channels first): self, other,
    coins of colour 0..C−1, then the own goal colour as C constant one-hot planes (split with
    :func:`split_observation`). No step counter. ``swap_index`` is the channel
    permutation of :func:`swap_perspective`; ``slot_info()["goal"]`` holds the true goals ``[B, 2]``.

    Layout (``reset(options={"layout": L})``, L a dict or a list with one dict per game reset):
    ``{"goals": [g0, g1], "players": [[r, c], [r, c]], "coins": [[r, c, colour], …]}`` plus optional
    ``"collected": [[per colour] for each player]`` and ``"moves": int`` (moves made so far, so that
    ``player_{moves % 2}`` moves next). Rows count from the top, as OpenSpiel prints them.
    """

    shared_reward = True

    def __init__(
        self,
        num_envs: int,
        seed: int | None = None,
        rows: int = 8,
        columns: int = 8,
        episode_length: int = 20,
        num_extra_coin_colors: int = 1,
        num_coins_per_color: int = 4,
    ):
        super().__init__(num_envs, seed)
        self.num_colors = 2 + num_extra_coin_colors
        if min(rows, columns, episode_length, num_coins_per_color) < 1 or num_extra_coin_colors < 0:
            raise AnewError("coin game: rows, columns, episode_length and num_coins_per_color must be >= 1")
        if 2 + self.num_colors * num_coins_per_color > rows * columns:
            raise AnewError(
                f"coin game: {self.num_colors * num_coins_per_color} coins and 2 players do not "
                f"fit on a {rows}x{columns} grid; use fewer coins or a larger grid"
            )
        self.shape = (rows, columns)
        self.coins_per_color = num_coins_per_color
        self.num_goals = self.num_colors
        self.agents = ("player_0", "player_1")
        self.max_steps = episode_length
        channels = 2 + 2 * self.num_colors
        self.observation_space = gym.spaces.Box(0.0, 1.0, (channels, rows, columns), np.float32)
        self.action_space = gym.spaces.Discrete(grid.NUM_ACTIONS)
        self.swap_index = grid.swap_index(channels, [(0, 1)])
        self.goals = np.zeros((num_envs, 2), dtype=np.int64)
        self.pos = np.zeros((num_envs, 2, 2), dtype=np.int64)
        self.coins = np.full((num_envs, rows, columns), -1, dtype=np.int64)  # colour, -1 = no coin
        self.collected = np.zeros((num_envs, 2, self.num_colors), dtype=np.int64)
        self.t = np.zeros(num_envs, dtype=np.int64)
        self.reset()

    # ---------------------------------------------------------------- episodes
    def reset(self, mask: np.ndarray | None = None, options: dict[str, Any] | None = None) -> None:
        games = np.flatnonzero(np.ones(self.num_envs, bool) if mask is None else mask)
        layout = (options or {}).get("layout")
        if layout is not None:
            for game, item in zip(games, grid.layouts_for(layout, len(games)), strict=True):
                self._set_layout(game, item)
            return
        n, total = len(games), self.num_colors * self.coins_per_color
        self.goals[games] = grid.sample_distinct_goals(self.rng, n, self.num_colors)
        cells = grid.sample_cells(self.rng, n, np.ones(self.shape, bool), 2 + total)
        self.pos[games] = cells[:, :2]
        self.coins[games] = -1
        colours = np.arange(total) // self.coins_per_color
        self.coins[games[:, None], cells[:, 2:, 0], cells[:, 2:, 1]] = colours
        self.collected[games] = 0
        self.t[games] = 0

    def _set_layout(self, game: int, layout: dict[str, Any]) -> None:
        missing = {"goals", "players", "coins"} - set(layout)
        if missing:
            raise AnewError(
                f"coin game layout lacks {sorted(missing)}; see CoinGameSim's docstring for the format"
            )
        coins = grid.check_cells(layout["coins"], self.shape, "coins", width=3)
        players = grid.check_cells(layout["players"], self.shape, "players")
        if len(players) != 2 or {tuple(p) for p in players} & {tuple(c) for c in coins[:, :2]}:
            raise AnewError("coin game layout needs two player cells, and no coin on a player's cell")
        if ((coins[:, 2] < 0) | (coins[:, 2] >= self.num_colors)).any():
            raise AnewError(f"coin colours must be in 0..{self.num_colors - 1}")
        collected = np.asarray(layout.get("collected", np.zeros((2, self.num_colors))), dtype=np.int64)
        if collected.shape != (2, self.num_colors) or collected.min() < 0:
            raise AnewError(f"layout collected must be 2 rows of {self.num_colors} non-negative counts")
        moves = int(layout.get("moves", 0))
        if not 0 <= moves <= self.max_steps:
            raise AnewError(f"layout moves must be in 0..{self.max_steps} (the episode length), got {moves}")
        self.goals[game] = grid.check_goals(layout["goals"], self.num_colors)
        self.pos[game] = players
        self.coins[game] = -1
        self.coins[game, coins[:, 0], coins[:, 1]] = coins[:, 2]
        self.collected[game] = collected
        self.t[game] = moves

    def layout(self, index: int = 0) -> dict[str, Any]:
        """Game ``index`` now, in the layout format (coins in row-major order)."""
        rows, cols = np.nonzero(self.coins[index] >= 0)
        return {
            "goals": self.goals[index].tolist(),
            "players": self.pos[index].tolist(),
            "coins": [
                [r, c, int(self.coins[index, r, c])]
                for r, c in zip(rows.tolist(), cols.tolist(), strict=True)
            ],
            "collected": self.collected[index].tolist(),
            "moves": int(self.t[index]),
        }

    # ---------------------------------------------------------------- stepping
    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        actions = grid.check_actions(actions, self.num_envs)
        games, mover = np.arange(self.num_envs), self.t % 2
        start, target, allowed = grid.mover_target(self.pos, mover, actions, self.shape)
        new = np.where(allowed[:, None], target, start)
        colour = self.coins[games, new[:, 0], new[:, 1]]  # a player's own cell never holds a coin
        got = colour >= 0
        self.collected[games[got], mover[got], colour[got]] += 1
        self.coins[games[got], new[got, 0], new[got, 1]] = -1
        self.pos[games, mover] = new
        self.t += 1
        terminated = self.t >= self.max_steps
        rewards = np.where(terminated[:, None], self.returns(), 0.0).astype(np.float32)
        return rewards, terminated, np.zeros(self.num_envs, dtype=bool)

    def returns(self) -> np.ndarray:
        """``[B, 2]`` the rewards the games would pay if they ended now (OpenSpiel's ``Returns``)."""
        totals = self.collected.sum(axis=1)
        own = np.take_along_axis(totals, self.goals, axis=1)
        good = own.sum(axis=1, keepdims=True)
        bad = totals.sum(axis=1, keepdims=True) - good
        return (own**2 + (good - own) ** 2 - bad**2).astype(np.float64)

    def observe(self) -> np.ndarray:
        obs = grid.new_observation(self.num_envs, self.observation_space.shape[0], self.shape, self.pos)
        obs[:, :, 2 : 2 + self.num_colors] = (
            self.coins[:, None] == np.arange(self.num_colors)[:, None, None]
        )[:, None]
        return grid.write_goal_planes(obs, self.goals, self.num_goals)

    def active(self) -> np.ndarray:
        return np.ones((self.num_envs, 2), dtype=bool)

    def to_move(self) -> np.ndarray:
        return np.stack([self.t % 2 == 0, self.t % 2 == 1], axis=1)

    def slot_info(self) -> dict[str, np.ndarray]:
        return {"goal": self.goals.copy()}

    def episode_metrics(self) -> dict[str, np.ndarray]:
        totals = self.collected.sum(axis=1)
        good = np.take_along_axis(totals, self.goals, axis=1).sum(axis=1)
        return {"good_coins": good, "bad_coins": totals.sum(axis=1) - good}

    def state_arrays(self) -> dict[str, np.ndarray]:
        return {
            "goals": self.goals,
            "pos": self.pos,
            "coins": self.coins,
            "collected": self.collected,
            "t": self.t,
        }

    # ---------------------------------------------------------------- helpers
    def agent_facts(self) -> dict[str, Any]:
        return {"swap_index": [int(i) for i in self.swap_index], "num_goals": int(self.num_goals)}

    def swap_perspective(self, obs: np.ndarray) -> np.ndarray:
        """See :func:`swap_perspective`."""
        return grid.swap_channels(obs, self.swap_index)

    def split_observation(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """See :func:`split_observation`."""
        return grid.split_goal(obs, self.num_goals)

    def render(self, index: int = 0, scale: int = 24) -> np.ndarray:
        image = grid.blank_board(self.shape, scale)
        for r, c in zip(*np.nonzero(self.coins[index] >= 0), strict=True):
            grid.paint(image, (r, c), grid.ITEM_COLOURS[self.coins[index, r, c] % 6], scale, inset=scale // 4)
        for player in range(2):
            grid.paint(image, self.pos[index, player], grid.PLAYER_COLOURS[player], scale, inset=1)
        return image


_PREFERENCES = re.compile(r"^preferences=(.*)$", re.MULTILINE)
_MOVES = re.compile(r"^moves=(\d+)$", re.MULTILINE)
_PLAYER_ROW = re.compile(r"^player(\d+)((?: \d+)+) ?$", re.MULTILINE)


def layout_from_openspiel(state_text: str) -> dict[str, Any]:
    """The layout of an OpenSpiel ``coin_game`` state, from ``str(state)`` once its chance phase is over
    (``phase=Play``; terminal states too). Reset a :class:`CoinGameSim` of the same size with it."""
    if "phase=Play" not in state_text:
        raise AnewError("layout_from_openspiel needs a coin_game state after its chance phase (phase=Play)")
    preferences = dict(re.findall(r"(\d+):([a-z])", _PREFERENCES.search(state_text).group(1)))
    if set(preferences) != {"0", "1"}:
        raise AnewError("layout_from_openspiel reads two-player coin_game states only")
    board = [line[1:-1] for line in state_text.splitlines() if line.startswith("|") and line.endswith("|")]
    players: dict[int, list[int]] = {}
    coins = []
    for r, line in enumerate(board):
        for c, symbol in enumerate(line):
            if symbol.isdigit():
                players[int(symbol)] = [r, c]
            elif symbol.isalpha():
                coins.append([r, c, ord(symbol) - ord("a")])
    collected = [[int(n) for n in counts.split()] for _, counts in sorted(_PLAYER_ROW.findall(state_text))]
    return {
        "goals": [ord(preferences[p]) - ord("a") for p in ("0", "1")],
        "players": [players[0], players[1]],
        "coins": coins,
        "collected": collected,
        "moves": int(_MOVES.search(state_text).group(1)),
    }
