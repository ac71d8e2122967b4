"""The speed peer of the batched traffic junction: the same rules written the straightforward way.

Each game is a list of :class:`Car` objects and every step loops over games and cars in Python, as the Lua
and IC3Net code do. It follows :class:`anew.envs.traffic_junction.TrafficJunctionSim`'s rules exactly and
draws its random numbers with the same calls (``draw_noise``), so both give identical rewards, crashes and
observations from the same seed (``tests/test_traffic_junction.py`` checks it): the benchmark compares
equal work.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from anew.envs.traffic_junction import DIFFICULTIES, GAS, ArrivalNoise
from anew.envs.traffic_junction_maps import road_map


@dataclass
class Car:
    slot: int
    on_board: bool = False
    route: int = 0
    pos: int = 0
    tau: int = 0


@dataclass
class Game:
    cars: list[Car]
    t: int = 0
    n_collisions: float = 0.0


@dataclass
class PerCarTrafficJunction:
    """``num_envs`` games, each a list of cars; the options mean what they mean in ``TrafficJunctionSim``."""

    num_envs: int
    seed: int | None = None
    difficulty: str = "easy"
    layout: str = "commnet"
    p_arrive: float | None = None
    max_active: int | None = None
    games: list[Game] = field(init=False)

    def __post_init__(self) -> None:
        self.nmax, self.max_steps, self.vision, default_p = DIFFICULTIES[self.difficulty]
        self.p_arrive = default_p if self.p_arrive is None else self.p_arrive
        self.max_active = self.nmax if self.max_active is None else self.max_active
        if self.layout == "ic3net" and self.difficulty == "hard":
            self.max_steps = 80
        self.coll_pen = 5.0 if self.layout == "commnet" else 10.0
        self.time_penalty = 0.01
        self.map = road_map(self.difficulty, self.layout)
        self.routes = [self.map.route_cells(r) for r in range(self.map.num_routes)]
        self.sources = [list(map(int, routes)) for routes in self.map.source_routes]
        self.blocks = {(int(y), int(x)) for y, x in zip(*np.nonzero(self.map.blocks), strict=True)}
        size = self.map.size
        self.vocab_size = 1 + self.nmax + size * size + len(self.routes) + (1 if self.blocks else 0)
        self.rng = np.random.default_rng(self.seed)
        self.reset()

    def reset(self) -> None:
        self.games = [Game([Car(slot) for slot in range(self.nmax)]) for _ in range(self.num_envs)]

    def draw_noise(self) -> ArrivalNoise:
        S = len(self.sources)
        u = self.rng.random((self.num_envs, 2 * S + self.nmax))
        return ArrivalNoise(u[:, :S], u[:, S : 2 * S], u[:, 2 * S :])

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.step_with_noise(actions, self.draw_noise())

    def step_with_noise(self, actions: np.ndarray, noise: ArrivalNoise) -> tuple[np.ndarray, ...]:
        rewards = np.zeros((self.num_envs, self.nmax), np.float32)
        truncated = np.zeros(self.num_envs, bool)
        for b, game in enumerate(self.games):
            self._step_game(b, game, actions[b], noise, rewards[b])
            game.t += 1
            truncated[b] = game.t >= self.max_steps
        return rewards, np.zeros(self.num_envs, bool), truncated

    def _step_game(self, b: int, game: Game, actions, noise: ArrivalNoise, rewards: np.ndarray) -> None:
        moving = [car for car in game.cars if car.on_board]
        present = []
        for car in moving:
            if actions[car.slot] == GAS:
                car.pos += 1
            car.tau += 1
            if car.pos >= len(self.routes[car.route]):  # ic3net layout: gassed from the last cell
                car.pos -= 1
                car.on_board = False
            else:
                present.append(car)
        occupancy: dict[tuple[int, int], int] = {}
        for car in present:
            cell = self.routes[car.route][car.pos]
            occupancy[cell] = occupancy.get(cell, 0) + 1
        for car in moving:
            crashed = car.on_board and occupancy[self.routes[car.route][car.pos]] > 1
            rewards[car.slot] = -self.time_penalty * car.tau - self.coll_pen * crashed
            if crashed:
                game.n_collisions += 0.5
            if self.layout == "commnet" and car.on_board and car.pos == len(self.routes[car.route]) - 1:
                car.on_board = False
        self._arrive(b, game, noise)

    def _arrive(self, b: int, game: Game, noise: ArrivalNoise) -> None:
        free = sorted(
            (car for car in game.cars if not car.on_board), key=lambda car: noise.slot_keys[b, car.slot]
        )
        count = self.nmax - len(free)
        for s, routes in enumerate(self.sources):
            if count >= self.max_active:  # the curriculum's car cap
                return
            if noise.arrive[b, s] < self.p_arrive:
                car = free.pop(0)
                car.route = routes[min(int(noise.route[b, s] * len(routes)), len(routes) - 1)]
                car.on_board, car.pos, car.tau = True, 0, 0
                count += 1

    def observe(self) -> np.ndarray:
        v, w, size, V = self.vision, 2 * self.vision + 1, self.map.size, self.vocab_size
        obs = np.zeros((self.num_envs, self.nmax, w * w, V), np.int8)
        route_word = 1 + self.nmax + size * size
        for b, game in enumerate(self.games):
            cars = [car for car in game.cars if car.on_board]
            for car in cars:
                y, x = self.routes[car.route][car.pos]
                for other in cars:
                    oy, ox = self.routes[other.route][other.pos]
                    if abs(oy - y) <= v and abs(ox - x) <= v:
                        cell = obs[b, car.slot, (oy - y + v) * w + (ox - x + v)]
                        cell[0] = cell[1 + other.slot] = cell[1 + self.nmax + oy * size + ox] = 1
                        cell[route_word + other.route] = 1
                if self.blocks:
                    for dy in range(-v, v + 1):
                        for dx in range(-v, v + 1):
                            if (y + dy, x + dx) in self.blocks:
                                obs[b, car.slot, (dy + v) * w + dx + v, V - 1] = 1
        return obs.reshape(self.num_envs, self.nmax, -1)

    def on_board(self) -> np.ndarray:
        return np.array([[car.on_board for car in game.cars] for game in self.games])

    def n_collisions(self) -> np.ndarray:
        return np.array([game.n_collisions for game in self.games])
