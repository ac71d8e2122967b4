"""Traffic junction (CommNet, Sukhbaatar et al. 2016, §4.2) as a batched :class:`TeamSim`."""

from __future__ import annotations

from typing import Any, NamedTuple

import gymnasium as gym
import numpy as np

from anew.envs import grid_render
from anew.envs.multiagent import TeamSim
from anew.envs.traffic_junction_maps import road_map
from anew.envs.traffic_junction_pairs import CarPairs, NoiseBlock
from anew.envs.traffic_junction_tables import build_tables
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
    terminate and are truncated at ``max_steps``. ``episode_metrics``: ``success`` (bool: no crash so far),
    ``failure`` (its negation) and ``n_collisions``.

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

    State, slot-major ``[A, B]`` so that numpy's inner loops run over the batch: each car's *code* (slot,
    route, cells travelled, or off the board), its time on the board, per-slot ``crashes``, ``t`` and the
    per-game options; ``state_arrays`` shows them batch-first as ``route``/``track``/``on_board``/``tau``/...
    ``step`` has no Python loop over cars, sources or games: one row of a per-code table (``take``) says
    what the step does to a car (``traffic_junction_tables``); crashes and arrivals come from comparing the
    cars of each game (``traffic_junction_pairs``). ``step`` draws its uniforms 16 steps at a time (the same
    numbers as one draw per step; ``state_dict`` holds the generator state of the current step).
    ``step_with_noise`` takes the step's random numbers (``draw_noise``) so other implementations
    (``benchmarks/traffic_junction_percar.py``) can replay them exactly. Actions other than gas brake.
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
        self.map = road_map(difficulty, layout)
        if not 0 <= self.vision <= self.map.size:
            raise AnewError(f"vision must be in 0..{self.map.size} (got {vision})")
        self.coll_pen = float(coll_pen if coll_pen is not None else (5.0 if layout == "commnet" else 10.0))
        self.time_penalty = float(time_penalty)
        self.agents = tuple(f"car_{i}" for i in range(self.nmax))
        self.action_space = gym.spaces.Discrete(2)
        self._cell_word = 1 + self.nmax
        self._route_word = self._cell_word + self.map.size * self.map.size
        self.vocab_size = self._route_word + self.map.num_routes + int(self.map.blocks.any())  # + block
        self._tables = build_tables(
            self.map, self.nmax, layout, self.vision, self._cell_word, self._route_word, self.vocab_size
        )
        self.observation_space = gym.spaces.MultiBinary(self.window**2 * self.vocab_size)

        A, B = self.nmax, num_envs
        routes_per_source, bins = self.map.source_routes.shape[1], len(self._tables.bin_cell)
        self._car_pairs = CarPairs(B, A, self.map.num_sources, routes_per_source, self._tables.start, bins)
        self._noise: NoiseBlock | None = None  # the random numbers of the next steps
        self._slot_block = np.arange(A)[:, None] * self._tables.block
        self._code = np.repeat(2 * (self._slot_block + self._tables.off_track), B, axis=1)  # [A, B]
        self._tau_a = np.zeros((A, B), np.int32)  # steps on the board (0 off the board) times A
        self._crashes = np.zeros((A, B), np.int64)  # crashed car-steps per slot this episode
        self._crash_bins, self._crashed = np.zeros((A, B), np.int64), np.zeros((A, B), bool)  # last step
        self._crash_cells: np.ndarray | None = None  # crash_cell, once asked for or loaded
        j, _, b = np.meshgrid(np.arange(A), np.arange(A), np.arange(B), indexing="ij")  # car pairs [A, A, B]
        self._pair_row = ((b * A + j) * self.observation_space.shape[0]).ravel()  # the observer's row
        # vision 0: pairs (shift d = 1 .. A-1, observer j, game b) of j and the car k = j + d mod A
        self._shifted = (np.arange(A)[None] + np.arange(1, A)[:, None]).ravel() % A  # [(A-1) * A]
        self._car_row = self._pair_row.reshape(A, A, B)[:, 0].ravel()  # observer (j, b) at j * B + b
        self._shifted_car = (self._shifted[:, None] * B + np.arange(B)).ravel()  # seen car k * B + b
        self.t = np.zeros(B, np.int64)
        self.p_arrive = np.zeros(B, np.float64)
        self.max_active = np.zeros(B, np.int64)
        self.p_arrive_default = np.array(default_p, np.float64)
        self.max_active_default = np.array(self.nmax, np.int64)
        self._cap_position: np.ndarray | None = None  # first rank position past the cap, if any is capped
        self._tau_bound = 0  # no car has been on the board longer
        self._reward_of = self._reward_table(self.max_steps + 1)
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
        self._code[:, mask] = 2 * (self._slot_block + self._tables.off_track)
        for array in (self._tau_a, self._crashes, self._crashed):
            array[:, mask] = 0
        self.t[mask] = 0
        if self._crash_cells is not None:
            self._crash_cells[mask] = -1
        self.p_arrive[mask] = self.p_arrive_default
        self.max_active[mask] = self.max_active_default
        self._set_cap()
        if self._noise is not None:
            self._noise.wants = None  # p_arrive may have changed
        if mask.all():
            self._tau_bound = 0

    def draw_noise(self) -> ArrivalNoise:
        """The random numbers of the next step (what :meth:`step` would use)."""
        uniforms, _, _ = self._next_uniforms()
        S = self.map.num_sources
        return ArrivalNoise(uniforms[:S].T, uniforms[S : 2 * S].T, uniforms[2 * S :].T)

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        uniforms, starts, wants = self._next_uniforms()
        return self._advance(actions, wants, uniforms[2 * self.map.num_sources :], starts)

    def step_with_noise(self, actions: np.ndarray, noise: ArrivalNoise) -> tuple[np.ndarray, ...]:
        """:meth:`step` with its random numbers given (tests replay them into other implementations)."""
        wants = (noise.arrive.T < self.p_arrive).astype(np.float32)
        return self._advance(actions, wants, noise.slot_keys.T, self._car_pairs.route_starts(noise.route.T))

    def _advance(
        self, actions: np.ndarray, wants: np.ndarray, slot_keys: np.ndarray, starts: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One step of every game; the random inputs are slot-major (``[S, B]``, ``[A, B]``)."""
        brake = np.not_equal(np.asarray(actions).reshape(self.num_envs, self.nmax).T, GAS)
        step = self._tables.step.take(self._code + brake, axis=0)  # time grows, crash bin, stays, settles to
        self._tau_a += step[..., 0]
        bins, stays = step[..., 1], np.ascontiguousarray(step[..., 2])
        arrivals, mates = self._car_pairs.resolve(bins, stays, wants, slot_keys, starts, self._cap_position)
        self._tau_bound += 1
        if (self._tau_bound + 1) * self.nmax > len(self._reward_of):
            self._reward_of = self._reward_table(2 * (self._tau_bound + 1))
        rewards = self._reward_of.take(self._tau_a + mates).T  # a view, batch-first
        crashed = mates > 0  # another car in its cell
        self._crashes += crashed
        self._crash_bins, self._crashed, self._crash_cells = bins, crashed, None
        self._tau_a *= stays
        self._code = step[..., 3] + arrivals
        self.t += 1
        return rewards, np.zeros(self.num_envs, bool), self.t >= self.max_steps

    def observe(self) -> np.ndarray:
        """The words of every car in each car's window, scattered from the car pairs (observer j, seen k)
        that see each other, found in ``[A, A, B]`` layout so that numpy's inner loops run over the batch.
        Vision 0: each car's own words are one row gather; only cars sharing a cell need the pairs."""
        B, A, V, w, v = self.num_envs, self.nmax, self.vocab_size, self.window, self.vision
        code, tables = self._code, self._tables
        if tables.own is not None:
            obs = tables.own.take(code.T, axis=0)
            meet = tables.meet.take(code, axis=1)  # (cell as observer, cell as seen)
            seen_cells = meet[1].take(self._shifted, axis=0).reshape(A - 1, A, B)
            pair = np.flatnonzero(seen_cells == meet[0])  # another car in the same cell
            rows = self._car_row.take(pair, mode="wrap")
            words = tables.words.take(code.take(self._shifted_car.take(pair)), axis=1)
        else:
            obs = np.zeros((B, A, w * w * V), np.int8)
            sight = tables.sight.take(code, axis=1)  # [4, A, B]
            dy = sight[2][None] - sight[0][:, None]  # [observer, seen, game]: seen row - observer row + v
            dx = sight[3][None] - sight[1][:, None]
            unsigned = f"u{dy.itemsize}"  # in the window: 0 <= difference <= 2v
            pair = np.flatnonzero((dy.view(unsigned) <= 2 * v) & (dx.view(unsigned) <= 2 * v))
            window = np.multiply(dy.ravel().take(pair), w, dtype=np.intp)
            window += dx.ravel().take(pair)
            rows = self._pair_row.take(pair) + window * V
            words = tables.words.take(code, axis=1).reshape(4, A * B)  # every car's words, then the seen
            words = words.take(pair, axis=1, mode="wrap")  # pair (j, k, b) sees car k * B + b: pair mod AB
        obs.ravel()[(words + rows).ravel()] = 1
        if tables.blocks is not None:
            obs.reshape(B, A, w * w, V)[..., -1] = tables.blocks.take(code.T, axis=0)
        return obs

    def put_car(self, game: int, slot: int, route: int, cells_travelled: int = 0, tau: int = 0) -> None:
        """Put car ``slot`` of game ``game`` on the board (scripted situations: tests, demos)."""
        last = self.map.route_len[route] - (2 if self.layout == "commnet" else 1)  # commnet: leaves on last
        if not 0 <= cells_travelled <= last:
            raise AnewError(
                f"route {route}: a car on the board has travelled 0..{last} cells (got {cells_travelled})"
            )
        self._code[slot, game] = 2 * (
            slot * self._tables.block + route * self._tables.stride + cells_travelled
        )
        self._tau_a[slot, game] = self.nmax * tau
        self._tau_bound = max(self._tau_bound, tau)

    def active(self) -> np.ndarray:
        return self._tables.on.take(self._code.T)

    @property
    def crash_cell(self) -> np.ndarray:
        """``[B, A]`` cell of each car's crash in the last step, -1 if it did not crash (the picture)."""
        if self._crash_cells is None:
            cells = np.where(self._crashed, self._tables.bin_cell.take(self._crash_bins), -1)
            self._crash_cells = np.ascontiguousarray(cells.T)
        return self._crash_cells

    def state_arrays(self) -> dict[str, np.ndarray]:
        arrays = {"route": self.slot_info()["route"], "track": self._code.T // 2 - self._slot_block.T}
        arrays |= {"on_board": self.active(), "tau": self._tau_a.T // self.nmax, "t": self.t}
        arrays |= {"crashes": self._crashes.T, "crash_cell": self.crash_cell}
        options = ("p_arrive", "max_active", "p_arrive_default", "max_active_default")
        return arrays | {name: getattr(self, name) for name in options}

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        if self._noise is not None and self._noise.rng is self.rng:
            state["rng"] = self._noise.state_now()  # self.rng is ahead: it drew a block of steps
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        arrays, (B, A) = state["arrays"], (self.num_envs, self.nmax)

        def slotted(name: str, dtype: type) -> np.ndarray:
            return np.ascontiguousarray(np.asarray(arrays[name], dtype).reshape(B, A).T)

        track = np.where(slotted("on_board", bool), slotted("track", np.int64), self._tables.off_track)
        self._code = 2 * (self._slot_block + track)
        self._tau_a = self.nmax * slotted("tau", np.int32)
        self._crashes = slotted("crashes", np.int64)
        self._crash_cells = np.asarray(arrays["crash_cell"], np.int64).reshape(B, A).copy()
        self._crashed = self._crash_cells.T >= 0
        self.t = np.asarray(arrays["t"], np.int64).reshape(B).copy()
        self.p_arrive = np.asarray(arrays["p_arrive"], np.float64).reshape(B).copy()
        self.max_active = np.asarray(arrays["max_active"], np.int64).reshape(B).copy()
        self.p_arrive_default = np.array(arrays["p_arrive_default"], np.float64).reshape(())
        self.max_active_default = np.array(arrays["max_active_default"], np.int64).reshape(())
        self._set_cap()
        self._tau_bound = int(self._tau_a.max(initial=0)) // self.nmax
        self.rng.bit_generator.state = state["rng"]
        self._noise = None  # draw from the loaded state on

    def slot_info(self) -> dict[str, np.ndarray]:
        """``route`` of each car on the board (-1 off the board) and its cell index ``y * size + x``."""
        shown = self._tables.shown.take(self._code.T, axis=0)
        return {"route": shown[..., 0], "cell": shown[..., 1]}

    def episode_metrics(self) -> dict[str, np.ndarray]:
        crashes = self._crashes.sum(axis=0)
        return {"success": crashes == 0, "failure": crashes > 0, "n_collisions": 0.5 * crashes}

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
        crash_cell = self.crash_cell[index]
        for crash in np.unique(crash_cell[crash_cell >= 0]):
            grid_render.frame(image, *divmod(int(crash), m.size), px, grid_render.RED)
        cell = self._cells()[index]
        for c in np.unique(cell[cell >= 0]):
            slots = np.flatnonzero(cell == c)
            parts, inset = min(len(slots), 4), 3 if len(slots) == 1 else 1
            for part, slot in enumerate(slots[:4]):
                grid_render.fill(image, *divmod(int(c), m.size), px, colours[slot], inset, part, parts)
            if len(slots) > 1:
                grid_render.cross(image, *divmod(int(c), m.size), px, grid_render.RED)
        return image

    # ---------------------------------------------------------------- internals
    @property
    def window(self) -> int:
        return 2 * self.vision + 1

    def _cells(self) -> np.ndarray:
        """``[B, A]`` cell index ``y * size + x`` of each car on the board (-1 off the board)."""
        return self.slot_info()["cell"]

    def _next_uniforms(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The next step's uniforms ``[2S + A, B]``, route starts ``[S, B]`` and wants ``[S, B]``, from the
        current block (a new one when it is used up or ``self.rng`` was replaced)."""
        block, S = self._noise, self.map.num_sources
        if block is None or block.rng is not self.rng or block.used == len(block.uniforms):
            block = self._noise = NoiseBlock.draw(self.rng, self.num_envs, S, self._car_pairs, self.nmax)
        if block.wants is None:
            block.wants = (block.uniforms[:, :S] < self.p_arrive).astype(np.float32)
        block.used += 1
        return block.uniforms[block.used - 1], block.starts[block.used - 1], block.wants[block.used - 1]

    def _set_cap(self) -> None:
        capped = (self.max_active < self.nmax).any()
        self._cap_position = self._car_pairs.cap_positions(self.max_active) if capped else None

    def _reward_table(self, steps: int) -> np.ndarray:
        """Reward at ``tau * A + cell mates`` for tau < ``steps``, computed in float64 as the rule says (the
        crash penalty once, however many cars share the cell), then stored float32."""
        tau, mates = np.divmod(np.arange(steps * self.nmax), self.nmax)
        return (tau * -self.time_penalty - (mates > 0) * self.coll_pen).astype(np.float32)


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise AnewError(f"unknown {name} {value!r}: choose one of {', '.join(choices)}")


def _positive(name: str, value: int) -> int:
    if int(value) < 1:
        raise AnewError(f"{name} must be >= 1 (got {value})")
    return int(value)
