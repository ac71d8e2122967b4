"""Combat (CommNet, Sukhbaatar et al. 2016, §4.3): 5 marines against 5 scripted bots, as a batched TeamSim."""

from __future__ import annotations

from typing import Any, NamedTuple

import gymnasium as gym
import numpy as np

from anew.envs import grid_render
from anew.envs.multiagent import TeamSim
from anew.errors import AnewError

MOVES = np.array([[-1, 0], [1, 0], [0, -1], [0, 1]])  # up, down, left, right
NO_OP, FIRST_SHOT = 4, 5
CELL_PIXELS = 24


class TurnNoise(NamedTuple):
    """The random numbers of one step: ``initiative [B, U]`` keys (units act in increasing key order) and
    ``axis [B, U]`` uniforms (a bot moving toward its target steps vertically when ``axis > |dx|/dist``)."""

    initiative: np.ndarray
    axis: np.ndarray


class CombatSim(TeamSim):
    """``num_envs`` battles on a ``size`` x ``size`` grid (15); slots ``marine_0 … marine_4``.

    Units 0..n-1 are the marines (the slots), n..2n-1 the bots (``facebookarchive/CommNet``
    ``games/CombatGame.lua``, ``CombatAgent.lua``, ``config/combat_game.lua``, ``marine_config.lua``).
    Every unit has ``hp`` 3, ``damage`` 1, ``shot_range`` 1 and ``cooldown`` 1 (a shot sets the unit's
    counter to ``cooldown + 1``; every own turn lowers it by 1, so a unit fires at most every other step).
    Distances are Chebyshev (``distance_measure 0``). Each team starts within ``dispersion`` (5) cells of a
    uniformly drawn centre, clipped to the grid; units may start on the same cell (the Lua code does not
    check), but no move enters a cell held by a living unit, nor leaves the grid.

    Actions (15): 0 up, 1 down, 2 left, 3 right, 4 no-op, ``5 + k`` shoot unit k for k = 0..9 (the Lua
    ``shoot_agent{k+1}``; units 0..4 are the own team, 5..9 the bots). A shot fires when the shooter's
    counter is 0 and hits a living enemy within range; shooting a teammate, a dead unit or out of range is a
    no-op. Lua spends the cooldown on any shot at an enemy id, hit or not: ``miss_costs_cooldown=True``.

    One step: a random initiative order of all living units (a fresh permutation per game per step); in
    that order each unit whose hp has fallen to 0 dies without acting, the others act (marines: the given
    action; bots: below) and lower their counter. After all turns units at hp <= 0 die; the battle ends
    when a side has no living unit. The loop over the 2n turn positions is in Python, each turn vectorised
    over the games (turns are sequential: a unit may die, or a cell free up, before a later unit acts).

    Bot (``default_choose_action``, attack type ``nearest``): its target is the nearest living marine
    (Chebyshev, ties to the lower index). It shoots it when in range and its counter is 0; otherwise, if
    the target is visible to the bots' team it steps toward it (vertically with probability 1 - |dx|/dist,
    else horizontally), and if not it stays (no random walk). Visibility: ``fog`` on (Lua ``fog 1``), a
    unit is seen by a team when a living member is within ``sight`` (default ``visibility``, 1) of it; Lua
    also counts dead members' sight, here they see nothing. With ``fog=False`` everything is seen.

    Rewards: 0 on every step but the last; at the end every slot, dead or alive, gets
    ``-enemy_hp_cost * (hp left on living bots) - draw_cost * [draw or timeout] - loss_cost * [loss]``
    (0.1, 1, 1). Terminated when a side is wiped out, truncated at ``max_steps`` (40).
    ``episode_metrics``: ``win`` (bool: only marines are left), ``enemy_hp``, ``marines_alive``.

    Observation: a multi-hot ``[(2v+1)^2, V]`` over the window of radius ``visibility`` around the marine,
    flattened, with the words of every living unit there that its team sees: unit id (2n), team (own,
    enemy), hp (1..hp), cooldown counter (0..cooldown+1) and absolute cell (size^2), as the Lua vocabulary
    (``marine``, mana and shields words are constant there and omitted). Dead marines see zeros.
    """

    def __init__(
        self,
        num_envs: int,
        seed: int | None = None,
        size: int = 15,
        team_size: int = 5,
        hp: int = 3,
        damage: int = 1,
        shot_range: int = 1,
        cooldown: int = 1,
        visibility: int = 1,
        sight: int | None = None,
        fog: bool = True,
        dispersion: int = 5,
        max_steps: int = 40,
        miss_costs_cooldown: bool = False,
        enemy_hp_cost: float = 0.1,
        draw_cost: float = 1.0,
        loss_cost: float = 1.0,
    ):
        super().__init__(num_envs, seed)
        for name, value in (("size", size), ("team_size", team_size), ("hp", hp), ("max_steps", max_steps)):
            if int(value) < 1:
                raise AnewError(f"combat {name} must be >= 1 (got {value})")
        if min(damage, shot_range, cooldown, visibility, dispersion) < 0:
            raise AnewError("combat damage, shot_range, cooldown, visibility and dispersion must be >= 0")
        self.size, self.n, self.hp_max, self.damage = int(size), int(team_size), int(hp), int(damage)
        self.shot_range, self.cooldown_max, self.visibility = int(shot_range), int(cooldown), int(visibility)
        self.sight = self.visibility if sight is None else int(sight)
        self.fog, self.dispersion, self.max_steps = bool(fog), int(dispersion), int(max_steps)
        self.miss_costs_cooldown = bool(miss_costs_cooldown)
        self.costs = (float(enemy_hp_cost), float(draw_cost), float(loss_cost))
        self.agents = tuple(f"marine_{i}" for i in range(self.n))
        self.action_space = gym.spaces.Discrete(FIRST_SHOT + 2 * self.n)
        # vocabulary: unit ids | own team, enemy team | hp 1..max | counter 0..cooldown+1 | absolute cell
        self._team_word = 2 * self.n
        self._hp_word = self._team_word + 2
        self._cooldown_word = self._hp_word + self.hp_max
        self._cell_word = self._cooldown_word + self.cooldown_max + 2
        self.vocab_size = self._cell_word + self.size**2
        self.window = 2 * self.visibility + 1
        self.observation_space = gym.spaces.MultiBinary(self.window**2 * self.vocab_size)

        B, U = num_envs, 2 * self.n
        self.y = np.zeros((B, U), np.int64)
        self.x = np.zeros((B, U), np.int64)
        self.hp = np.zeros((B, U), np.int64)
        self.counter = np.zeros((B, U), np.int64)
        self.alive = np.zeros((B, U), bool)
        self.hit = np.zeros((B, U), bool)  # hit during the last step (render)
        self.t = np.zeros(B, np.int64)
        self.over = np.zeros(B, bool)

    # ---------------------------------------------------------------- TeamSim
    def reset(self, mask: np.ndarray | None = None, options: dict[str, Any] | None = None) -> None:
        mask = np.ones(self.num_envs, bool) if mask is None else np.asarray(mask, bool)
        count, U, d = int(mask.sum()), 2 * self.n, self.dispersion
        centres = self.rng.integers(0, self.size, (count, 2, 2))  # [game, team, (y, x)]
        offsets = self.rng.integers(-d, d + 1, (count, U, 2))
        cells = np.clip(np.repeat(centres, self.n, axis=1) + offsets, 0, self.size - 1)
        self.y[mask], self.x[mask] = cells[..., 0], cells[..., 1]
        self.hp[mask], self.counter[mask], self.alive[mask], self.hit[mask] = self.hp_max, 0, True, False
        self.t[mask], self.over[mask] = 0, False

    def draw_noise(self) -> TurnNoise:
        u = self.rng.random((self.num_envs, 4 * self.n))
        return TurnNoise(u[:, : 2 * self.n], u[:, 2 * self.n :])

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.step_with_noise(actions, self.draw_noise())

    def step_with_noise(self, actions: np.ndarray, noise: TurnNoise) -> tuple[np.ndarray, ...]:
        """:meth:`step` with its random numbers given."""
        actions = np.asarray(actions, np.int64).reshape(self.num_envs, self.n)
        playing = ~self.over
        self.hit = np.zeros_like(self.hit)
        games = np.arange(self.num_envs)
        for unit in np.argsort(noise.initiative, axis=1).T:  # [B] unit index of each turn position
            self.alive[games, unit] &= self.hp[games, unit] > 0
            acting = playing & self.alive[games, unit]
            marine_action = actions[games, np.minimum(unit, self.n - 1)]
            action = np.where(unit < self.n, marine_action, self._bot_action(unit, noise.axis[games, unit]))
            self._move(unit, acting & (action < NO_OP), np.minimum(action, NO_OP - 1))
            self._shoot(unit, acting & (action >= FIRST_SHOT), np.maximum(action - FIRST_SHOT, 0))
            self.counter[games, unit] = np.where(
                acting, np.maximum(self.counter[games, unit] - 1, 0), self.counter[games, unit]
            )
        self.alive &= self.hp > 0
        self.t = self.t + playing
        marines, bots = self.alive[:, : self.n].any(axis=1), self.alive[:, self.n :].any(axis=1)
        terminated = playing & ~(marines & bots)
        truncated = playing & ~terminated & (self.t >= self.max_steps)
        self.over = self.over | terminated | truncated
        enemy_hp_cost, draw_cost, loss_cost = self.costs
        final = (
            -enemy_hp_cost * self._enemy_hp()
            - draw_cost * (truncated | (terminated & ~marines & ~bots))
            - loss_cost * (terminated & ~marines & bots)
        )
        rewards = np.where(terminated | truncated, final, 0.0)[:, None].repeat(self.n, axis=1)
        return rewards.astype(np.float32), terminated, truncated

    def observe(self) -> np.ndarray:
        B, n, V, w, v = self.num_envs, self.n, self.vocab_size, self.window, self.visibility
        obs = np.zeros((B, n, w * w, V), np.int8)
        dy, dx = self.y[:, None, :] - self.y[:, :n, None], self.x[:, None, :] - self.x[:, :n, None]
        seen = (
            self.alive[:, :n, None]
            & self.alive[:, None, :]
            & (np.abs(dy) <= v)
            & (np.abs(dx) <= v)
            & self._seen_by_team(team=0)[:, None, :]
        )
        b, j, k = np.nonzero(seen)
        cell = (dy[b, j, k] + v) * w + dx[b, j, k] + v
        words = (
            k,
            self._team_word + (k >= n),
            self._hp_word + self.hp[b, k] - 1,
            self._cooldown_word + self.counter[b, k],
            self._cell_word + self.y[b, k] * self.size + self.x[b, k],
        )
        for word in words:
            obs[b, j, cell, word] = 1
        return obs.reshape(B, n, w * w * V)

    def active(self) -> np.ndarray:
        return self.alive[:, : self.n].copy()

    def state_arrays(self) -> dict[str, np.ndarray]:
        return {
            name: getattr(self, name) for name in ("y", "x", "hp", "counter", "alive", "hit", "t", "over")
        }

    def slot_info(self) -> dict[str, np.ndarray]:
        return {"hp": np.maximum(self.hp[:, : self.n], 0)}

    def episode_metrics(self) -> dict[str, np.ndarray]:
        marines, bots = self.alive[:, : self.n].any(axis=1), self.alive[:, self.n :].any(axis=1)
        return {
            "win": marines & ~bots,
            "enemy_hp": self._enemy_hp().astype(np.float64),
            "marines_alive": self.alive[:, : self.n].sum(axis=1).astype(np.float64),
        }

    def render(self, index: int = 0) -> np.ndarray:
        """Dark ground; marines in their slot colours, bots dark red; a bar under each unit shows its hp;
        units hit in the last step carry a white cross; the dead are not drawn."""
        px = CELL_PIXELS
        image = grid_render.upscale(np.full((self.size, self.size, 3), 45, np.uint8), px)
        colours = np.vstack([grid_render.slot_colours(self.n), np.tile([[150, 35, 35]], (self.n, 1))])
        for unit in np.flatnonzero(self.alive[index] | self.hit[index]):
            y, x = int(self.y[index, unit]), int(self.x[index, unit])
            if self.alive[index, unit]:
                grid_render.fill(image, y, x, px, colours[unit], 3)
                bar = max(int(self.hp[index, unit]), 0) * (px - 6) // self.hp_max
                image[y * px + px - 5 : y * px + px - 2, x * px + 3 : x * px + 3 + bar] = (60, 220, 60)
            if self.hit[index, unit]:
                grid_render.cross(image, y, x, px, (255, 255, 255))
        return image

    # ---------------------------------------------------------------- internals
    def _enemy_hp(self) -> np.ndarray:
        return np.where(self.alive[:, self.n :], self.hp[:, self.n :], 0).sum(axis=1)

    def _distance(self, unit: np.ndarray, others: slice) -> np.ndarray:
        """``[B, len(others)]`` Chebyshev distance from each game's ``unit`` to the units in ``others``."""
        games = np.arange(self.num_envs)
        return np.maximum(
            np.abs(self.y[:, others] - self.y[games, unit][:, None]),
            np.abs(self.x[:, others] - self.x[games, unit][:, None]),
        )

    def _seen_by_team(self, team: int) -> np.ndarray:
        """``[B, U]`` whether the team (0 marines, 1 bots) sees each unit (fog: a living member within sight)."""
        if not self.fog:
            return np.ones_like(self.alive)
        own = slice(team * self.n, (team + 1) * self.n)
        near = (
            np.maximum(
                np.abs(self.y[:, own, None] - self.y[:, None, :]),
                np.abs(self.x[:, own, None] - self.x[:, None, :]),
            )
            <= self.sight
        )
        return (near & self.alive[:, own, None]).any(axis=1)

    def _bot_action(self, unit: np.ndarray, axis_draw: np.ndarray) -> np.ndarray:
        games = np.arange(self.num_envs)
        far = 10 * self.size
        distance = np.where(self.hp[:, : self.n] > 0, self._distance(unit, slice(0, self.n)), far)
        target = distance.argmin(axis=1)
        reach = distance[games, target]
        shoot = (reach <= self.shot_range) & (self.counter[games, unit] == 0)
        dy = self.y[games, target] - self.y[games, unit]
        dx = self.x[games, target] - self.x[games, unit]
        vertical = axis_draw > np.abs(dx) / np.maximum(reach, 1)
        step = np.where(vertical, np.where(dy > 0, 1, 0), np.where(dx > 0, 3, 2))
        visible = self._seen_by_team(team=1)[games, target] & (reach < far)
        return np.where(shoot, FIRST_SHOT + target, np.where(visible, step, NO_OP))

    def _move(self, unit: np.ndarray, moving: np.ndarray, direction: np.ndarray) -> None:
        games = np.arange(self.num_envs)
        y, x = self.y[games, unit] + MOVES[direction, 0], self.x[games, unit] + MOVES[direction, 1]
        inside = (y >= 0) & (y < self.size) & (x >= 0) & (x < self.size)
        taken = (self.alive & (self.y == y[:, None]) & (self.x == x[:, None])).any(axis=1)
        ok = moving & inside & ~taken
        self.y[games, unit] = np.where(ok, y, self.y[games, unit])
        self.x[games, unit] = np.where(ok, x, self.x[games, unit])

    def _shoot(self, unit: np.ndarray, shooting: np.ndarray, target: np.ndarray) -> None:
        games = np.arange(self.num_envs)
        enemy = (target >= self.n) != (unit >= self.n)
        ready = shooting & enemy & (self.counter[games, unit] == 0)
        gap = np.maximum(
            np.abs(self.y[games, target] - self.y[games, unit]),
            np.abs(self.x[games, target] - self.x[games, unit]),
        )
        hits = ready & (self.hp[games, target] > 0) & (gap <= self.shot_range)
        fired = ready if self.miss_costs_cooldown else hits
        self.counter[games, unit] = np.where(fired, self.cooldown_max + 1, self.counter[games, unit])
        self.hp[games, target] -= np.where(hits, self.damage, 0)
        self.hit[games, target] |= hits
