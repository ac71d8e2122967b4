"""Inventory benchmarks: simulator speed against per-instance Gymnasium loops, and DirectBackprop's
optimality gaps on Zipkin's lost-sales grid.

    python benchmarks/bench_inventory.py speed               # ~1 minute
    python benchmarks/bench_inventory.py directbackprop      # the L x p grid (16 runs, ~20-40 minutes)
    python benchmarks/bench_inventory.py directbackprop --lead-times 2 4 --penalties 4

Speed: periods simulated per second by
- anew's batched simulator (``InventorySim.step`` on 4096 instances; the vector env face adds the
  numpy conversion, measured too),
- a per-instance loop over ``gymnasium.make("anew/LostSales-v0")`` (the same simulation, one instance),
- a per-instance loop over a plain numpy Gymnasium env written here (the usual way inventory envs
  are written, e.g. or-gym's), which is the fairer peer.
All run the same random orders on L = 4, p = 4 in one process; the script prints the ratios.
"""

from __future__ import annotations

import argparse
import json
import time

import gymnasium as gym
import numpy as np
import torch

from anew.envs.inventory import InventoryConfig, InventorySim
from anew.envs.inventory_exact import lost_sales_optimum
from anew.envs.inventory_gym import register_inventory_envs


class PlainLostSalesEnv(gym.Env):
    """A straightforward single-instance numpy implementation of the same lost-sales model."""

    def __init__(
        self, lead_time: int = 4, p: float = 4.0, h: float = 1.0, mean: float = 5.0, max_order: int = 9
    ):
        self.lead_time, self.p, self.h, self.mean = lead_time, p, h, mean
        self.observation_space = gym.spaces.Box(0, np.inf, (lead_time,), np.float32)
        self.action_space = gym.spaces.Discrete(max_order + 1)
        self.state = np.zeros(lead_time, np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.state = np.zeros(self.lead_time, np.float32)
        return self.state.copy(), {}

    def step(self, action):
        demand = self.np_random.poisson(self.mean)
        x0 = self.state[0]
        cost = self.h * max(x0 - demand, 0) + self.p * max(demand - x0, 0)
        pipeline = np.append(self.state[1:], action)
        pipeline[0] += max(x0 - demand, 0)
        self.state = pipeline.astype(np.float32)
        return self.state.copy(), -float(cost), False, False, {}


def _time(fn, *args) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def bench_speed(num_envs: int, periods: int, loop_periods: int) -> dict[str, float]:
    torch.set_num_threads(1)
    register_inventory_envs()
    rng = np.random.default_rng(0)
    config = InventoryConfig(lead_time=4, p=4.0)
    orders = torch.as_tensor(rng.integers(0, 10, (periods, num_envs)), dtype=torch.float32)
    sim = InventorySim(config, num_envs, seed=0)

    def run_batched() -> None:
        sim.reset(0)
        for t in range(periods):
            sim.step(orders[t])

    vec = gym.make_vec("anew/LostSales-v0", num_envs=num_envs, lead_time=4, p=4.0, max_episode_steps=10**9)
    numpy_orders = orders.numpy().astype(np.int64)

    def run_vector() -> None:
        vec.reset(seed=0)
        for t in range(periods):
            vec.step(numpy_orders[t])

    single_orders = rng.integers(0, 10, loop_periods).tolist()

    def run_loop(env: gym.Env) -> None:
        env.reset(seed=0)
        for action in single_orders:
            env.step(action)

    run_batched()  # warm up kernels and allocator
    results = {
        "anew_batched": num_envs * periods / _time(run_batched),
        "anew_vector_env": num_envs * periods / _time(run_vector),
        "anew_gym_single": loop_periods / _time(run_loop, gym.make("anew/LostSales-v0", lead_time=4, p=4.0)),
        "plain_numpy_gym_single": loop_periods / _time(run_loop, PlainLostSalesEnv()),
    }
    return results


def _orders(agent, rounded: bool):
    """The trained network's orders for a state batch, rounded to integers or not."""

    def act(state: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            raw = agent.policy(torch.as_tensor(state)).numpy()
        return np.rint(raw) if rounded else raw

    return act


def bench_directbackprop(
    lead_times: list[int], penalties: list[float], updates: int, seed: int, runs_dir: str
) -> list[dict]:
    """Each cell is ``anew train directbackprop`` (a normal run folder); its final policy is then simulated on
    1000 instances x 2000 periods (the first 200 dropped) of the batched simulator, on the same demand paths
    for every cell, with orders rounded (the table) and not (``continuous_orders``); the run's own eval.json
    (100 Gymnasium episodes of 1000 periods) is printed beside it."""
    from pathlib import Path

    from anew.envs.inventory import simulate_policy
    from anew.runners.loading import load_agent_from_checkpoint
    from anew.runners.train import main as train

    rows = []
    for lead_time in lead_times:
        for p in penalties:
            start = time.perf_counter()
            run_dir = (
                Path(runs_dir)
                / f"directbackprop_L{lead_time}_p{p:g}_seed{seed}_{time.strftime('%Y%m%d-%H%M%S')}"
            )
            cell = ["--lead-time", str(lead_time), "--p", str(p), "--horizon", str(16 + 2 * lead_time)]
            steps = ["--seed", str(seed), "--total-steps", str(updates), "--log-every", str(updates)]
            evaluation = ["--eval-episodes", "100", "--run-dir", str(run_dir)]
            train(["directbackprop", "--env-id", "anew/LostSales-v0", *cell, *steps, *evaluation])
            seconds = time.perf_counter() - start
            agent, _, _ = load_agent_from_checkpoint(run_dir)
            # max_order 1000: the network bounds its own orders, as in the recorded protocol
            instance = InventoryConfig(lead_time=lead_time, p=p, max_order=1000)
            cost, se = simulate_policy(instance, _orders(agent, True), 1000, 2000, 200, seed=10_000)
            continuous, _ = simulate_policy(instance, _orders(agent, False), 1000, 2000, 200, seed=10_000)
            optimum = lost_sales_optimum(lead_time, p).average_cost
            extra = json.loads((run_dir / "eval.json").read_text())["evaluations"][-1]["extra"]
            row = {
                "L": lead_time, "p": p, "optimal": optimum, "directbackprop": cost, "se": se,
                "gap_percent": 100 * (cost / optimum - 1), "continuous_orders": continuous,
                "seconds": seconds,
                "run_eval_average_cost": extra["average_cost"], "run_eval_se": extra["average_cost_se"],
            }  # fmt: skip
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("what", choices=["speed", "directbackprop", "optima"])
    parser.add_argument("--num-envs", type=int, default=4096)
    parser.add_argument("--periods", type=int, default=500)
    parser.add_argument("--loop-periods", type=int, default=20000)
    parser.add_argument("--lead-times", type=int, nargs="+", default=[1, 2, 3, 4])
    parser.add_argument("--penalties", type=float, nargs="+", default=[4.0, 9.0, 19.0, 39.0])
    parser.add_argument("--updates", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--runs-dir", default="/tmp/anew_bench_runs")
    args = parser.parse_args()
    if args.what == "speed":
        results = bench_speed(args.num_envs, args.periods, args.loop_periods)
        for name, rate in results.items():
            print(f"{name:24s} {rate:14,.0f} periods/s")
        for peer in ("anew_gym_single", "plain_numpy_gym_single"):
            print(f"batched / {peer}: {results['anew_batched'] / results[peer]:,.0f}x")
    elif args.what == "optima":
        for lead_time in args.lead_times:
            cells = []
            for p in args.penalties:
                start = time.perf_counter()
                cells.append(
                    f"{lost_sales_optimum(lead_time, p).average_cost:.4f} ({time.perf_counter() - start:.2f}s)"
                )
            print(f"L={lead_time}: " + "  ".join(cells))
    else:
        rows = bench_directbackprop(args.lead_times, args.penalties, args.updates, args.seed, args.runs_dir)
        print("| L | p | optimum | DirectBackprop | gap % |\n|---|---|---|---|---|")
        for r in rows:
            print(
                f"| {r['L']} | {r['p']:g} | {r['optimal']:.4f} | {r['directbackprop']:.4f} ± {r['se']:.4f} | {r['gap_percent']:.2f} |"
            )


if __name__ == "__main__":
    main()
