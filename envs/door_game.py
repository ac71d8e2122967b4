"""``anew/DoorGame-SOM-v0``: the cooperative door game of SOM (Raileanu et al., 2018), batched.

The paper's exact rules are not verified (reference §2.2); these are the simplest rules that keep its
point, with the key numbers as parameters (see :class:`DoorGameSim`).
"""

from __future__ import annotations

from typing import Any, Literal

import gymnasium as gym
import numpy as np

from anew.envs import som_grid as grid
from anew.envs.multiagent import TeamSim
from anew.errors import AnewError

# The door a move from the vestibule pushes (up, down, left, right, stand): left 0, up 1, right 2.
VESTIBULE_DOOR = np.array([1, -1, 0, 2, -1])


class DoorGameSim(TeamSim):
    """A batch of door games: one player opens the other's hidden door; the one out lets the other out.

    Rules (experimental; the paper's are unverified). The game's point is that a player must infer which
    door the other needs from how it behaves; ``door_layout`` picks where the doors are:

    - ``"vestibule"`` (the default): row 0 is a wall but for one cell in its middle, the vestibule, and
      the three doors (``num_doors`` must be 3) lead out of it: left, up and right. A player waiting
      for its door therefore stands where every player waits, and only its moves (pushing against its
      closed door) show which door it needs: a model of the other that reads actions can know, a policy
      that sees only the current board cannot (it can guess one of two).
    - ``"wall"``: row 0 is a wall with ``num_doors`` doors spread evenly (columns
      ``floor(linspace(0, columns - 1, num_doors) + 0.5)``: 0, 2, 4). Caveat: a player waiting below its
      door shows its goal in the current board, so a memoryless agent without a model of the other can
      read it there (a small A2C probe without the other's goal reached 99% success, as with it).

    Common rules:

    - ``rows`` × ``columns`` grid (5 × 5); the last row has door d's switch in column
      ``floor(linspace(0, columns - 1, num_doors) + 0.5)[d]`` (left to right: in the vestibule layout the
      left, up and right doors). Players start on distinct cells drawn uniformly from rows 1 .. rows−2.
      Each player's hidden goal is a door; the two goals differ.
    - A switch opens its door for the *other* player only, for the rest of the episode: stepping onto
      switch d marks door d "opened by me", and only the other may pass it. A player can open at most
      ``presses_per_player`` doors (1), so it must infer which door the other needs: with 3 doors and
      different goals that is one of two.
    - Players alternate, ``player_0`` first; once a player has left, the other moves every step.
      Actions and blocking as in the coin game (0 up, 1 down, 2 left, 3 right, 4 stand; off the grid
      or into the other's cell: stay). Row 0 is blocked except the vestibule (vestibule layout) and
      except one's own goal door once the other has opened it (moving through it leaves). A player who
      leaves through the vestibule leaves the board (row −1); through a wall door it stays in the
      doorway. Either way its actions are ignored from then on. With ``exit_opens_other`` (True), the
      one who has left opens the other's goal door from outside, so the second exit needs no inference
      (without it both must open the other's door before either leaves: a 2.5-minute A2C probe stayed at
      one exit per episode).
    - Shared reward: +1 to both slots each time a player leaves, so 2 when both do. The game ends
      (``terminated``) when both have left or after ``episode_length`` steps (40; both players' moves
      count).

    Observation of each slot (float32 ``[4 + 2D, rows, columns]``, channels first): self, other,
    doors opened by self (marked on the door cells), doors opened by the other, door d with its switch
    (D planes), own goal door as D constant one-hot planes. A door's cell is its doorway in the wall
    layout; in the vestibule layout the wall cell left of the vestibule, the vestibule itself and the
    wall cell right of it. ``swap_index`` exchanges self/other and the two "opened by" planes (the goal
    planes stay; a SOM agent overwrites them). ``slot_info()["goal"]`` is the true goal door.

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
        episode_length: int = 40,
        door_layout: Literal["vestibule", "wall"] = "vestibule",
    ):
        super().__init__(num_envs, seed)
        if rows < 3 or not 2 <= num_doors <= columns or min(presses_per_player, episode_length) < 1:
            raise AnewError(
                "door game needs rows >= 3, 2 <= num_doors <= columns, presses_per_player >= 1 and "
                "episode_length >= 1"
            )
        if door_layout not in ("vestibule", "wall"):
            raise AnewError(f"door_layout must be 'vestibule' or 'wall' (got {door_layout!r})")
        if door_layout == "vestibule" and (num_doors != 3 or columns < 3):
            raise AnewError("the vestibule layout has 3 doors (left, up, right): num_doors=3, columns >= 3")
        self.shape = (rows, columns)
        self.num_doors = self.num_goals = num_doors
        self.presses_per_player = presses_per_player
        self.exit_opens_other = exit_opens_other
        self.door_layout = door_layout
        self.door_columns = np.floor(np.linspace(0, columns - 1, num_doors) + 0.5).astype(np.int64)
        middle = columns // 2
        self.vestibule = np.array([0, middle])
        # The cell that marks each door: its doorway, or around the vestibule (left, up, right).
        door_marks = self.door_columns if door_layout == "wall" else np.arange(middle - 1, middle + 2)
        self.door_cells = np.stack([np.zeros(num_doors, np.int64), door_marks], axis=1)
        self.agents = ("player_0", "player_1")
        self.max_steps = episode_length
        channels = 4 + 2 * num_doors
        self.observation_space = gym.spaces.Box(0.0, 1.0, (channels, rows, columns), np.float32)
        self.action_space = gym.spaces.Discrete(grid.NUM_ACTIONS)
        self.swap_index = grid.swap_index(channels, [(0, 1), (2, 3)])
        self.start_cells = np.zeros(self.shape, dtype=bool)
        self.start_cells[1 : rows - 1] = True
        self._door_planes = np.zeros((num_doors, rows, columns), dtype=np.float32)
        self._door_planes[np.arange(num_doors), 0, self.door_cells[:, 1]] = 1.0
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
        goal = self.goals[games, mover]
        door_open = self.opened[games, goal, 1 - mover]
        if self.door_layout == "wall":
            through_door = (target[:, 0] == 0) & (target[:, 1] == self.door_columns[goal])
            leaves = allowed & through_door & door_open
            allowed &= (target[:, 0] > 0) | leaves
        else:
            in_vestibule = (start == self.vestibule).all(axis=1)
            pushed = VESTIBULE_DOOR[actions[games, mover]]  # the door a move from the vestibule pushes
            leaves = in_vestibule & (pushed == goal) & door_open
            allowed &= (target[:, 0] > 0) | (target == self.vestibule).all(axis=1)
        new = np.where(allowed[:, None], target, start)
        if self.door_layout == "vestibule":
            new[leaves] = -1  # gone: the vestibule is free for the other
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
        marks = self.door_cells[:, 1]
        obs[:, :, 2, 0, marks] = opened  # doors I opened (for the other)
        obs[:, :, 3, 0, marks] = opened[:, ::-1]  # doors the other opened for me
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
        """Wall row dark (the vestibule light); each door and its switch in the door's colour (small
        squares; a door is filled once opened, framed in the colour of the player it lets through)."""
        rows, _ = self.shape
        image = grid.blank_board(self.shape, scale)
        image[:scale] = 90
        if self.door_layout == "vestibule":
            grid.paint(image, tuple(self.vestibule), 235, scale)
        for door, (column, mark) in enumerate(zip(self.door_columns, self.door_cells, strict=True)):
            colour = grid.ITEM_COLOURS[door % 6]
            grid.paint(image, (rows - 1, column), colour, scale, inset=scale // 3)
            grid.paint(image, tuple(mark), 235, scale)
            grid.paint(image, tuple(mark), colour, scale, inset=scale // 4)  # closed: a small square
            for opener in range(2):
                if self.opened[index, door, opener]:
                    grid.paint(image, tuple(mark), grid.PLAYER_COLOURS[1 - opener], scale)
                    grid.paint(image, tuple(mark), colour, scale, inset=3)
        for player in range(2):
            if self.pos[index, player, 0] >= 0:  # a player gone through the vestibule is off the board
                grid.paint(
                    image, self.pos[index, player], grid.PLAYER_COLOURS[player], scale, inset=scale // 6
                )
        return image
