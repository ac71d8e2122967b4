"""Traffic junction (CommNet, Sukhbaatar et al. 2016, §4.2) as a batched :class:`TeamSim`."""

from __future__ import annotations

from typing import Any, NamedTuple

import gymnasium as gym
import numpy as np

from anew.envs import grid_render
from anew.envs.multiagent import TeamSim
from anew.envs.traffic_junction_maps import road_map
from anew.errors import AnewError

GAS, BRAKE = 0, 1
# difficulty -> (nmax, max_steps, vision, final p_arrive of the CommNet curriculum)
DIFFICULTIES = {"easy": (5, 20, 0, 0.3), "medium": (10, 40, 1, 0.2), "hard": (20, 40, 1, 0.1)}
LAYOUTS = ("commnet", "ic3net")
OBS_MODES = ("commnet_bow",)
CELL_PIXELS = 24


class ArrivalNoise(NamedTuple):
    """The random numbers of one step: ``arrive``/``route`` uniforms ``[B, S]`` per source (arrival test and
    route pick) and ``slot_keys [B, A]`` (free slots are filled in increasing key order)."""

    arrive: np.ndarray
    route: np.ndarray
    slot_keys: np.ndarray


class TrafficJunctionSim(TeamSim):
    """``num_envs`` traffic junctions; slots ``car_0 … car_{nmax-1}``; actions 0 gas, 1 brake.

    Options: ``difficulty`` easy|medium|hard (grid 7/14/18, ``nmax`` 5/10/20, ``max_steps`` 20/40/40,
    ``vision`` 0/1/1); ``layout`` commnet (default: the Lua maps, 2 sources x 2 routes / 4 x 3 / 8 x 7) or
    ic3net; ``obs_mode`` commnet_bow; ``p_arrive`` (default the curriculum's final value 0.3/0.2/0.1);
    ``max_active`` (cap on cars on the board, default ``nmax``; the Lua easy curriculum raises it 3 -> 5);
    ``coll_pen`` (default 5 commnet, 10 ic3net) and ``time_penalty`` (0.01).

    One step, all games at once (``facebookarchive/CommNet`` ``games/Traffic.lua``):

    1. every car on the board acts: gas moves it one cell along its route, brake keeps it in place;
    2. its time on the board ``tau`` grows by 1;
    3. every car in a cell holding more than one car crashed: it is charged ``coll_pen`` and the game's
       ``n_collisions`` grows by 0.5 per such car (Lua's ``ncollision``: one 2-car crash counts 1);
    4. a car standing on its route's last cell leaves the board (commnet layout);
    5. arrivals: each source in turn, unless ``max_active`` cars are on the board, with probability
       ``p_arrive`` (``u < p``) puts a random free slot on the source cell with a uniformly drawn route of
       that source; the cell is not checked (a car may arrive on a waiting one).

    Reward of a car on the board at the start of the step: ``-time_penalty * tau - coll_pen * crashed``;
    0 for the others (a car that arrived this step gets its first reward after its first move). Episodes
    start with an empty board (as in the Lua and IC3Net code: the first step only brings arrivals), never
    terminate and are truncated at ``max_steps``. ``episode_metrics``: ``success`` (bool: no crash so far;
    failure rate = 1 - success) and ``n_collisions``.

    Choices where the sources differ or are silent:

    - Lua removes arrived cars inside its collision loop, so in a crash on a route's last cell only the
      earlier car pays; here every car in the cell pays. Such a crash needs the same cars to have crashed
      on the previous cell, so success is unaffected.
    - ic3net layout: IC3Net's easy map (2 straight routes), a car leaves when it gasses *from* its last cell
      (it is off the board before crashes are counted), ``coll_pen`` 10 per car, hard ``max_steps`` 80.
      Not copied from IC3Net: it counts crashes after arrivals (a car arriving on a waiting one is charged at
      once) and gives a leaving car no time penalty; both layouts use the step order above. Medium and hard
      use the Lua road geometry in both layouts (IC3Net's route generator lays its roads on the same rows
      and columns; route-by-route identity is not verified).
    - ``p_arrive`` and ``max_active`` are per game, fixed at each episode start from the current default:
      ``set_options(p_arrive=..., max_active=...)`` (the runner's curriculum) changes the default, and so do
      ``reset`` options (the Gymnasium way; autoresets then keep that value). Unknown reset options are
      ignored (PettingZoo's API test passes some); unknown ``set_options`` names raise.

    Observation ``commnet_bow`` (Lua ``get_visible_state``): a multi-hot ``[(2v+1)^2, V]`` over the window
    around the car, flattened. Words of every car on the board in a window cell: ``agent``, its slot id,
    its absolute cell and its route; plus ``block`` on the cells walled off in the easy CommNet map (the
    only map whose blocks are visible). V = 1 + nmax + H*W + routes (+1 block). Cars off the board see
    zeros. The Lua vocabulary also holds words that never occur (gas/brake, spare coordinates); omitted.
    IC3Net's observation (``obs_mode ic3net``) is not implemented.

    State: ``track [B, A]`` (a car's row in the flattened route table: ``route * stride + cells
    travelled``), ``route``, ``on_board``, ``tau``, per-slot ``crashes``, ``t``, and the per-game options.
    ``step`` has no Python loop over cars, sources or games: crashes come from one ``bincount`` of
    (game, cell) keys, arrivals past the cap from a running count over the sources, free slots from a
    per-game ``argsort`` of random keys. ``step_with_noise`` takes the step's random numbers (``draw_noise``)
    so other implementations (``benchmarks/traffic_junction_percar.py``) can replay them exactly.
    """

    def __init__(
        self,
        num_envs: int,
        seed: int | None = None,
        difficulty: str = "easy",
        layout: str = "commnet",
        nmax: int | None = None,
        max_steps: int | None = None,
        vision: int | None = None,
        p_arrive: float | None = None,
        max_active: int | None = None,
        obs_mode: str = "commnet_bow",
        coll_pen: float | None = None,
        time_penalty: float = 0.01,
    ):
        super().__init__(num_envs, seed)
        _check_choice("difficulty", difficulty, tuple(DIFFICULTIES))
        _check_choice("layout", layout, LAYOUTS)
        _check_choice("obs_mode", obs_mode, OBS_MODES)
        default_nmax, default_steps, default_vision, default_p = DIFFICULTIES[difficulty]
        if layout == "ic3net" and difficulty == "hard":
            default_steps = 80
        self.difficulty, self.layout, self.obs_mode = difficulty, layout, obs_mode
        self.nmax = _positive("nmax", default_nmax if nmax is None else nmax)
        self.max_steps = _positive("max_steps", default_steps if max_steps is None else max_steps)
        self.vision = default_vision if vision is None else int(vision)
        if self.vision < 0:
            raise AnewError(f"vision must be >= 0 (got {vision})")
        self.coll_pen = float(coll_pen if coll_pen is not None else (5.0 if layout == "commnet" else 10.0))
        self.time_penalty = float(time_penalty)
        self.map = road_map(difficulty, layout)
        self.agents = tuple(f"car_{i}" for i in range(self.nmax))
        self.action_space = gym.spaces.Discrete(2)
        self._build_vocabulary()
        self._build_tables()
        self.observation_space = gym.spaces.MultiBinary(self.window**2 * self.vocab_size)

        B, A = num_envs, self.nmax
        self.route = np.zeros((B, A), np.int64)
        self.track = np.zeros((B, A), np.int64)  # route * stride + cells travelled: a row of the route table
        self.on_board = np.zeros((B, A), bool)
        self.tau = np.zeros((B, A), np.int64)  # steps on the board (0 off the board)
        self.t = np.zeros(B, np.int64)
        self.crashes = np.zeros((B, A), np.int64)  # crashed car-steps per slot this episode
        self.crash_cell = np.full((B, A), -1, np.int64)  # cell of each car's crash in the last step (render)
        self.p_arrive = np.zeros(B, np.float64)
        self.max_active = np.zeros(B, np.int64)
        self.p_arrive_default = np.array(default_p, np.float64)
        self.max_active_default = np.array(self.nmax, np.int64)
        self.set_options(
            p_arrive=default_p if p_arrive is None else p_arrive,
            max_active=self.nmax if max_active is None else max_active,
        )

    # ---------------------------------------------------------------- options
    def set_options(
        self, p_arrive: float | None = None, max_active: int | None = None, **unknown: Any
    ) -> None:
        """Set the arrival probability / car cap used from the next episode start on."""
        if unknown:
            raise AnewError(f"traffic junction options are p_arrive and max_active, not {', '.join(unknown)}")
        if p_arrive is not None:
            if not 0.0 <= float(p_arrive) <= 1.0:
                raise AnewError(f"p_arrive must be in [0, 1] (got {p_arrive})")
            self.p_arrive_default = np.array(float(p_arrive), np.float64)
        if max_active is not None:
            if not 1 <= int(max_active) <= self.nmax:
                raise AnewError(f"max_active must be in 1..nmax={self.nmax} (got {max_active})")
            self.max_active_default = np.array(int(max_active), np.int64)

    # ---------------------------------------------------------------- TeamSim
    def reset(self, mask: np.ndarray | None = None, options: dict[str, Any] | None = None) -> None:
        known = {k: v for k, v in (options or {}).items() if k in ("p_arrive", "max_active")}
        self.set_options(**known)
        mask = np.ones(self.num_envs, bool) if mask is None else np.asarray(mask, bool)
        for array in (self.route, self.track, self.tau, self.t, self.crashes):
            array[mask] = 0
        self.on_board[mask] = False
        self.crash_cell[mask] = -1
        self.p_arrive[mask] = self.p_arrive_default
        self.max_active[mask] = self.max_active_default

    def draw_noise(self) -> ArrivalNoise:
        """The random numbers one step uses (one draw from ``self.rng``)."""
        S = self.map.num_sources
        u = self.rng.random((self.num_envs, 2 * S + self.nmax))
        return ArrivalNoise(u[:, :S], u[:, S : 2 * S], u[:, 2 * S :])

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.step_with_noise(actions, self.draw_noise())

    def step_with_noise(self, actions: np.ndarray, noise: ArrivalNoise) -> tuple[np.ndarray, ...]:
        """:meth:`step` with its random numbers given (tests replay them into other implementations)."""
        moving = self.on_board
        self.track = self.track + (moving & (np.asarray(actions).reshape(moving.shape) == GAS))
        cell = self._cell_of[self.track]  # the off-map cell n_cells one step past a route's end (ic3net)
        present = moving & (cell < self._n_cells) if self.layout == "ic3net" else moving
        self.tau = self.tau + moving
        key = np.where(present, cell + self._game_cells, self._slot_bins)  # off the board: a bin of its own
        crashed = np.bincount(key.ravel(), minlength=self._n_bins)[key] > 1
        rewards = (self.tau * -self.time_penalty - crashed * self.coll_pen).astype(np.float32)
        self.crashes = self.crashes + crashed
        self.crash_cell = np.where(crashed, cell, -1)
        self.on_board = present & self._stays_on[self.track]  # commnet layout: leave on the last cell
        self.tau = self.tau * self.on_board
        self._arrive(noise)
        self.t = self.t + 1
        return rewards, np.zeros(self.num_envs, bool), self.t >= self.max_steps

    def observe(self) -> np.ndarray:
        """The words of every car in each car's window, scattered from the car pairs (observer j, seen k),
        which are found in ``[A, A, B]`` layout so that numpy's inner loops run over the batch."""
        B, A, V, w, n = self.num_envs, self.nmax, self.vocab_size, self.window, self._n_cells
        obs = np.zeros(B * A * w * w * V, np.int8)
        cell = self._cell_of[self.track]
        at = np.ascontiguousarray(np.where(self.on_board, cell, n).T)  # off the board: the off-map cell
        pair_cells = at[:, None, :] * (n + 1) + at[None, :, :]
        pair = np.flatnonzero(self._near[pair_cells])
        base = self._observer_car[pair] * (w * w * V)
        if self.vision:
            base += self._window_cell[pair_cells.ravel()[pair]] * V
        seen = self._seen_car[pair]
        cell_words, route_words = cell.ravel() + self._cell_word, self.route.ravel() + self._route_word
        obs[
            np.concatenate((base, base + 1 + seen % A, base + cell_words[seen], base + route_words[seen]))
        ] = 1
        obs = obs.reshape(B, A, w * w, V)
        if self._block_window is not None:
            obs[..., -1] = self._block_window[cell] * self.on_board[..., None]
        return obs.reshape(B, A, w * w * V)

    def put_car(self, game: int, slot: int, route: int, cells_travelled: int = 0, tau: int = 0) -> None:
        """Put car ``slot`` of game ``game`` on the board (scripted situations: tests, demos)."""
        if not 0 <= cells_travelled < self.map.route_len[route]:
            raise AnewError(f"route {route} has {self.map.route_len[route]} cells (got {cells_travelled})")
        self.on_board[game, slot], self.route[game, slot], self.tau[game, slot] = True, route, tau
        self.track[game, slot] = route * self._stride + cells_travelled

    def active(self) -> np.ndarray:
        return self.on_board.copy()

    def state_arrays(self) -> dict[str, np.ndarray]:
        names = (
            "route",
            "track",
            "on_board",
            "tau",
            "t",
            "crashes",
            "crash_cell",
            "p_arrive",
            "max_active",
            "p_arrive_default",
            "max_active_default",
        )
        return {name: getattr(self, name) for name in names}

    def slot_info(self) -> dict[str, np.ndarray]:
        """``route`` of each car on the board (-1 off the board) and its cell index ``y * size + x``."""
        return {
            "route": np.where(self.on_board, self.route, -1),
            "cell": np.where(self.on_board, self._cells(), -1),
        }

    def episode_metrics(self) -> dict[str, np.ndarray]:
        return {
            "success": self.crashes.sum(axis=1) == 0,
            "n_collisions": 0.5 * self.crashes.sum(axis=1),
        }

    def render(self, index: int = 0) -> np.ndarray:
        """The junction: grass, gray roads (darker walls on easy), source cells lighter, each car a square in
        its slot's colour (sharing a cell: quadrants), crashes of the last step framed and crossed in red."""
        m, px = self.map, CELL_PIXELS
        cells = np.empty((m.size, m.size, 3), np.uint8)
        cells[:] = (86, 130, 86)
        cells[m.road] = (150, 150, 150)
        cells[m.blocks] = (95, 85, 75)
        for source in m.source_routes[:, 0]:
            cells[m.route_y[source, 0], m.route_x[source, 0]] = (185, 185, 185)
        image = grid_render.upscale(cells, px)
        colours = grid_render.slot_colours(self.nmax)
        for crash in np.unique(self.crash_cell[index][self.crash_cell[index] >= 0]):
            grid_render.frame(image, *divmod(int(crash), m.size), px, grid_render.RED)
        cell = self._cells()[index]
        for c in np.unique(cell[self.on_board[index]]):
            slots = np.flatnonzero(self.on_board[index] & (cell == c))
            for part, slot in enumerate(slots[:4]):
                grid_render.fill(
                    image,
                    *divmod(int(c), m.size),
                    px,
                    colours[slot],
                    3 if len(slots) == 1 else 1,
                    part,
                    min(len(slots), 4),
                )
            if len(slots) > 1:
                grid_render.cross(image, *divmod(int(c), m.size), px, grid_render.RED)
        return image

    # ---------------------------------------------------------------- internals
    @property
    def window(self) -> int:
        return 2 * self.vision + 1

    def _cells(self) -> np.ndarray:
        """``[B, A]`` cell index ``y * size + x`` of each slot (meaningful for cars on the board)."""
        return self._cell_of[self.track]

    def _arrive(self, noise: ArrivalNoise) -> None:
        K = self.map.source_routes.shape[1]
        wants = noise.arrive < self.p_arrive[:, None]
        rank = wants.astype(np.float32) @ self._upper  # running count of arrivals over the sources
        room = self.max_active - self.on_board.astype(np.float32) @ self._ones
        arrives = wants & (rank <= room[:, None])  # Lua stops at the first source finding the board full
        b, s = np.nonzero(arrives)
        if b.size == 0:
            return
        free_order = np.argsort(np.where(self.on_board, 2.0, noise.slot_keys), axis=1, kind="stable")
        slot = free_order[b, rank[b, s].astype(np.int64) - 1]
        route = self._route_pick[s, (noise.route[b, s] * K).astype(np.int64)]
        self.route[b, slot] = route
        self.track[b, slot] = route * self._stride
        self.on_board[b, slot] = True

    def _build_tables(self) -> None:
        """Lookup tables that keep the step free of per-car work: per (route, position) its cell and
        whether a car there leaves; per cell its coordinates; per car pair its place in the observation."""
        m, B, A = self.map, self.num_envs, self.nmax
        self._n_cells = m.size * m.size
        self._stride = int(m.route_len.max()) + 1
        self._cell_of = np.full((m.num_routes, self._stride), self._n_cells, np.int64)
        self._stays_on = np.ones((m.num_routes, self._stride), bool)
        for r, length in enumerate(m.route_len):
            self._cell_of[r, :length] = m.route_y[r, :length] * m.size + m.route_x[r, :length]
            self._stays_on[r, length - 1] = self.layout != "commnet"
        self._cell_of, self._stays_on = self._cell_of.ravel(), self._stays_on.ravel()
        K = m.source_routes.shape[1]  # route of a source picked by floor(u * K), u < 1; padded for u*K == K
        self._route_pick = np.concatenate([m.source_routes, m.source_routes[:, K - 1 :]], axis=1)
        v, w, n = self.vision, self.window, self._n_cells
        y, x = np.divmod(np.arange(n + 1), m.size)
        dy, dx = y[None, :] - y[:, None], x[None, :] - x[:, None]  # [observer cell, seen cell]
        near = (np.abs(dy) <= v) & (np.abs(dx) <= v)
        near[n, :] = near[:, n] = False  # the off-map cell (cars off the board) sees and is seen by nothing
        self._near, self._window_cell = near.ravel(), ((dy + v) * w + dx + v).ravel()
        self._game_cells = (np.arange(B) * self._n_cells)[:, None]
        self._slot_bins = B * self._n_cells + np.arange(B * A).reshape(B, A)
        self._n_bins = B * (self._n_cells + A)
        self._ones = np.ones(A, np.float32)
        self._upper = np.triu(np.ones((m.num_sources, m.num_sources), np.float32))
        j, k, b = np.meshgrid(np.arange(A), np.arange(A), np.arange(B), indexing="ij")  # car pairs, [A, A, B]
        self._observer_car, self._seen_car = (b * A + j).ravel(), (b * A + k).ravel()

    def _build_vocabulary(self) -> None:
        m = self.map
        self._cell_word = 1 + self.nmax
        self._route_word = self._cell_word + m.size * m.size
        self.vocab_size = self._route_word + m.num_routes
        self._block_window = None
        if m.blocks.any():
            self.vocab_size += 1  # the last word
            w, v = self.window, self.vision
            padded = np.pad(m.blocks, v)
            ys, xs = np.divmod(np.arange(m.size * m.size), m.size)
            offsets = np.arange(w)
            rows = ys[:, None, None] + offsets[None, :, None]
            cols = xs[:, None, None] + offsets[None, None, :]
            window = padded[rows, cols].reshape(m.size * m.size, w * w).astype(np.int8)
            if window[m.road.ravel()].any():  # cars stand on roads: with vision 0 they never see a block
                self._block_window = np.vstack([window, np.zeros((1, w * w), np.int8)])  # + the off-map cell


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise AnewError(f"unknown {name} {value!r}: choose one of {', '.join(choices)}")


def _positive(name: str, value: int) -> int:
    if int(value) < 1:
        raise AnewError(f"{name} must be >= 1 (got {value})")
    return int(value)
