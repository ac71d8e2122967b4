"""Traffic-junction throughput: the batched ``TrafficJunctionSim`` vs the per-car Python peer.

Both run the same rules at the same batch (288 games, the CommNet batch) from the same seed, so they
see the same arrivals and crashes (``tests/test_traffic_junction.py`` checks that they agree step by step).
One environment step = ``step`` (all games) + ``observe`` (every car's observation), with random
gas/brake actions and a reset every ``max_steps``. Prints environment steps per CPU second for each,
game-steps per second (x batch) and the ratio. CPU time, not wall time, so other processes on a shared
machine skew the comparison less; the two are measured in alternating rounds.

    python benchmarks/bench_traffic_junction.py [--batch 288] [--difficulty easy medium hard] [--seconds 3]
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # numpy's tiny matmuls: no thread pool
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from traffic_junction_percar import PerCarTrafficJunction

from anew.envs.traffic_junction import TrafficJunctionSim


def run(env, actions: np.ndarray, steps: int, start: int) -> tuple[int, float]:
    """Step ``env`` ``steps`` times (step + observe) from episode step ``start``; return (next start, CPU s)."""
    began = time.process_time()
    for k in range(steps):
        if start == env.max_steps:
            env.reset()
            start = 0
        env.step(actions[(start + k) % len(actions)])
        env.observe()
        start += 1
    return start, time.process_time() - began


def measure(difficulty: str, batch: int, seconds: float, gas: float) -> dict[str, float]:
    batched = TrafficJunctionSim(batch, seed=0, difficulty=difficulty)
    peer = PerCarTrafficJunction(batch, seed=0, difficulty=difficulty)
    batched.reset()
    actions = (np.random.default_rng(0).random((64, batch, batched.nmax)) >= gas).astype(np.int64)
    envs = {"batched": batched, "per-car": peer}
    chunk = {"batched": 200, "per-car": 10}
    clocks = {name: [0, 0.0, 0] for name in envs}  # episode position, CPU seconds, steps
    while min(c[1] for c in clocks.values()) < seconds:
        for name, env in envs.items():
            position, spent = run(env, actions, chunk[name], clocks[name][0])
            clocks[name][0], clocks[name][1], clocks[name][2] = (
                position,
                clocks[name][1] + spent,
                clocks[name][2] + chunk[name],
            )
    return {name: steps / spent for name, (_, spent, steps) in clocks.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=288)
    parser.add_argument("--difficulty", nargs="+", default=["easy", "medium", "hard"])
    parser.add_argument("--seconds", type=float, default=3.0, help="CPU seconds per implementation")
    parser.add_argument("--gas", type=float, default=0.8, help="probability of the gas action")
    args = parser.parse_args()
    print(f"batch {args.batch}, step + observe, gas probability {args.gas}, CPU time")
    print(
        f"{'difficulty':>10} {'batched steps/s':>16} {'per-car steps/s':>16} {'batched game-steps/s':>21} {'ratio':>7}"
    )
    for difficulty in args.difficulty:
        rates = measure(difficulty, args.batch, args.seconds, args.gas)
        ratio = rates["batched"] / rates["per-car"]
        print(
            f"{difficulty:>10} {rates['batched']:16.1f} {rates['per-car']:16.1f} "
            f"{rates['batched'] * args.batch:21.0f} {ratio:6.1f}x"
        )


if __name__ == "__main__":
    main()
