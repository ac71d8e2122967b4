"""``anew/DoorGame-SOM-v0``: the cooperative door game of SOM (Raileanu et al., 2018), batched.

The paper's exact rules are not verified (reference §2.2); these are the simplest rules that keep its
point, with the key numbers as parameters (see :class:`DoorGameSim`).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from anew.envs import som_grid as grid
from anew.envs.multiagent import TeamSim
from anew.errors import AnewError


class DoorGameSim(TeamSim):
    """A batch of door games: one player opens the other's hidden door; the one out lets the other out.

    Rules (experimental; the paper's are unverified):

    - ``rows`` × ``columns`` grid (5 × 5). Row 0 is a wall with ``num_doors`` doors (3) spread evenly
      (columns ``floor(linspace(0, columns - 1, num_doors) + 0.5)``: 0, 2, 4); the last row has each
      door's switch in the door's column. Players start on distinct cells drawn uniformly from rows
      1 .. rows−2. Each player's hidden goal is a door; the two goals differ.
    - A switch opens its door for the *other* player only, for the rest of the episode: stepping onto
      switch d marks door d "opened by me", and only the other may pass it. A player can open at most
      ``presses_per_player`` doors (1), so it must infer which door the other needs: with 3 doors and
      different goals that is one of two, and the other shows it by walking to its door.
    - Players alternate, ``player_0`` first; once a player has left, the other moves every step.
      Actions and blocking as in the coin game (0 up, 1 down, 2 left, 3 right, 4 stand; off the grid
      or into the other's cell: stay). Moving into row 0 is blocked, except into one's own goal door
      once the other has opened it: the player then leaves (it stays in the doorway; its actions are
      ignored from then on). With ``exit_opens_other`` (True), the one who has left opens the other's
      goal door from outside, so the second exit needs no inference (without it both must open the
      other's door before either leaves: a 2.5-minute A2C probe stayed at one exit per episode).
    - Shared reward: +1 to both slots each time a player leaves, so 2 when both do. The game ends
      (``terminated``) when both have left or after ``episode_length`` steps (30).
    - Caveat: a player waiting below its door shows its goal in the current state, so a memoryless
      agent without a model of the other can read it there (a small A2C probe without the other's
      goal reached 99% success, as with it); unlike the coin game, history adds little here.

    Observation of each slot (float32 ``[4 + 2D, rows, columns]``, channels first): self, other,
    doors opened by self (marked on the door cells), doors opened by the other, door d with its switch
    (D planes), own goal door as D constant one-hot planes. ``swap_index`` exchanges self/other and the
    two "opened by" planes (the goal planes stay; a SOM agent overwrites them).
    ``slot_info()["goal"]`` is the true goal door.

    Layout (``reset(options={"layout": L})``, L a dict or one dict per game reset):
    ``{"goals": [door0, door1], "players": [[r, c], [r, c]]}`` with players in rows 1 .. rows−1.
    """

    shared_reward = True

    def __init__(
        self,
        num_envs: int,
        seed: int | None = None,
        rows: int = 5,
        columns: int = 5,
        num_doors: int = 3,
        presses_per_player: int = 1,
        exit_opens_other: bool = True,
        episode_length: int = 30,
    ):
        super().__init__(num_envs, seed)
        if rows < 3 or not 2 <= num_doors <= columns or min(presses_per_player, episode_length) < 1:
            raise AnewError(
                "door game needs rows >= 3, 2 <= num_doors <= columns, presses_per_player >= 1 and "
                "episode_length >= 1"
            )
        self.shape = (rows, columns)
        self.num_doors = self.num_goals = num_doors
        self.presses_per_player = presses_per_player
        self.exit_opens_other = exit_opens_other
        self.door_columns = np.floor(np.linspace(0, columns - 1, num_doors) + 0.5).astype(np.int64)
        self.agents = ("player_0", "player_1")
        self.max_steps = episode_length
        channels = 4 + 2 * num_doors
        self.observation_space = gym.spaces.Box(0.0, 1.0, (channels, rows, columns), np.float32)
        self.action_space = gym.spaces.Discrete(grid.NUM_ACTIONS)
        self.swap_index = grid.swap_index(channels, [(0, 1), (2, 3)])
        self.start_cells = np.zeros(self.shape, dtype=bool)
        self.start_cells[1 : rows - 1] = True
        self._door_planes = np.zeros((num_doors, rows, columns), dtype=np.float32)
        self._door_planes[np.arange(num_doors), 0, self.door_columns] = 1.0
        self._door_planes[np.arange(num_doors), rows - 1, self.door_columns] = 1.0
        self.goals = np.zeros((num_envs, 2), dtype=np.int64)
        self.pos = np.zeros((num_envs, 2, 2), dtype=np.int64)
        self.opened = np.zeros((num_envs, num_doors, 2), dtype=bool)  # [b, d, i]: player i opened door d
        self.exited = np.zeros((num_envs, 2), dtype=bool)
        self.t = np.zeros(num_envs, dtype=np.int64)
        self.reset()

    # ---------------------------------------------------------------- episodes
    def reset(self, mask: np.ndarray | None = None, options: dict[str, Any] | None = None) -> None:
        games = np.flatnonzero(np.ones(self.num_envs, bool) if mask is None else mask)
        self.opened[games] = False
        self.exited[games] = False
        self.t[games] = 0
        layout = (options or {}).get("layout")
        if layout is not None:
            for game, item in zip(games, grid.layouts_for(layout, len(games)), strict=True):
                self._set_layout(game, item)
            return
        self.goals[games] = grid.sample_distinct_goals(self.rng, len(games), self.num_doors)
        self.pos[games] = grid.sample_cells(self.rng, len(games), self.start_cells, 2)

    def _set_layout(self, game: int, layout: dict[str, Any]) -> None:
        if {"goals", "players"} - set(layout):
            raise AnewError(
                "door layout needs 'goals' and 'players'; see DoorGameSim's docstring for the format"
            )
        players = grid.check_cells(layout["players"], self.shape, "players")
        if len(players) != 2 or (players[:, 0] == 0).any():
            raise AnewError("door layout needs two player cells below the wall row (rows 1 and down)")
        self.goals[game] = grid.check_goals(layout["goals"], self.num_doors)
        self.pos[game] = players

    # ---------------------------------------------------------------- stepping
    def mover(self) -> np.ndarray:
        """``[B]`` who moves next: alternating, but never a player who has left."""
        turn = self.t % 2
        return np.where(self.exited[np.arange(self.num_envs), turn], 1 - turn, turn)

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        actions = grid.check_actions(actions, self.num_envs)
        games, mover = np.arange(self.num_envs), self.mover()
        start, target, allowed = grid.mover_target(self.pos, mover, actions, self.shape)
        goal_column = self.door_columns[self.goals[games, mover]]
        leaves = (
            allowed
            & (target[:, 0] == 0)
            & (target[:, 1] == goal_column)
            & self.opened[games, self.goals[games, mover], 1 - mover]
        )
        allowed &= (target[:, 0] > 0) | leaves
        new = np.where(allowed[:, None], target, start)
        self.pos[games, mover] = new
        self.exited[games, mover] |= leaves
        if self.exit_opens_other:
            out = games[leaves]
            self.opened[out, self.goals[out, 1 - mover[leaves]], mover[leaves]] = True
        switch = np.searchsorted(self.door_columns, new[:, 1])
        on_switch = (new[:, 0] == self.shape[0] - 1) & (
            self.door_columns[np.minimum(switch, self.num_doors - 1)] == new[:, 1]
        )
        presses_left = self.opened[games, :, mover].sum(axis=1) < self.presses_per_player
        press = on_switch & presses_left
        self.opened[games[press], switch[press], mover[press]] = True
        self.t += 1
        rewards = np.repeat(leaves.astype(np.float32)[:, None], 2, axis=1)
        terminated = self.exited.all(axis=1) | (self.t >= self.max_steps)
        return rewards, terminated, np.zeros(self.num_envs, dtype=bool)

    def observe(self) -> np.ndarray:
        obs = grid.new_observation(self.num_envs, self.observation_space.shape[0], self.shape, self.pos)
        opened = self.opened.transpose(0, 2, 1)  # [b, i, d]: player i opened door d
        obs[:, :, 2, 0, self.door_columns] = opened  # doors I opened (for the other)
        obs[:, :, 3, 0, self.door_columns] = opened[:, ::-1]  # doors the other opened for me
        obs[:, :, 4 : 4 + self.num_doors] = self._door_planes
        return grid.write_goal_planes(obs, self.goals, self.num_goals)

    def active(self) -> np.ndarray:
        return np.ones((self.num_envs, 2), dtype=bool)

    def to_move(self) -> np.ndarray:
        return np.arange(2)[None, :] == self.mover()[:, None]

    def slot_info(self) -> dict[str, np.ndarray]:
        return {"goal": self.goals.copy(), "exited": self.exited.copy()}

    def episode_metrics(self) -> dict[str, np.ndarray]:
        """``exits`` (0, 1 or 2 players out) and ``success`` (both out)."""
        return {"exits": self.exited.sum(axis=1), "success": self.exited.all(axis=1)}

    def state_arrays(self) -> dict[str, np.ndarray]:
        return {
            "goals": self.goals,
            "pos": self.pos,
            "opened": self.opened,
            "exited": self.exited,
            "t": self.t,
        }

    # ---------------------------------------------------------------- helpers
    def agent_facts(self) -> dict[str, Any]:
        return {"swap_index": [int(i) for i in self.swap_index], "num_goals": int(self.num_goals)}

    def swap_perspective(self, obs: np.ndarray) -> np.ndarray:
        """The observation as the other player sees the board: self/other and the two "opened by"
        planes exchanged; doors and goal planes unchanged. Swapping twice is the identity."""
        return grid.swap_channels(obs, self.swap_index)

    def split_observation(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(board [..., 4 + D, H, W], own goal door one-hot [..., D])``."""
        return grid.split_goal(obs, self.num_goals)

    def render(self, index: int = 0, scale: int = 24) -> np.ndarray:
        """Wall row dark; each door and its switch in the door's colour (small squares; a door is filled
        once opened, framed in the colour of the player it lets through)."""
        rows, _ = self.shape
        image = grid.blank_board(self.shape, scale)
        image[:scale] = 90
        for door, column in enumerate(self.door_columns):
            colour = grid.ITEM_COLOURS[door % 6]
            grid.paint(image, (rows - 1, column), colour, scale, inset=scale // 3)
            grid.paint(image, (0, column), 235, scale)
            grid.paint(image, (0, column), colour, scale, inset=scale // 4)  # closed: a small square
            for opener in range(2):
                if self.opened[index, door, opener]:
                    grid.paint(image, (0, column), grid.PLAYER_COLOURS[1 - opener], scale)
                    grid.paint(image, (0, column), colour, scale, inset=3)
        for player in range(2):
            grid.paint(image, self.pos[index, player], grid.PLAYER_COLOURS[player], scale, inset=scale // 6)
        return image
