"""Spaceship throughput: the batched vector env vs one-env-at-a-time Gymnasium stepping of the same rules.

Both sides run the same random actions (drawn beforehand, uniform in the action box) with episodes
reset as they end, over all 20 environments. The batched side is ``SpaceshipVectorEnv`` (SAME_STEP
autoreset, so resets are included) and, for reference, the bare ``SpaceshipSim.step``; the single side
is a plain Python loop over ``SpaceshipEnv`` instances, each stepped and reset on its own. Prints env
steps per CPU second (CPU time, not wall time, so other processes on a shared machine do not skew it)
and the ratio; the bar is >= 30x.

    python benchmarks/bench_spaceship.py [--batch-size 1024] [--seconds 3] [--force analytic]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

from anew.envs.spaceship import SpaceshipEnv, SpaceshipSim, SpaceshipVectorEnv


def steps_per_second(run_chunk: Callable[[], int], seconds: float) -> float:
    """Call ``run_chunk`` (which returns the env steps it took) until ``seconds`` of CPU time have passed."""
    run_chunk()  # warm-up
    steps, start = 0, time.process_time()
    while time.process_time() - start < seconds:
        steps += run_chunk()
    return steps / (time.process_time() - start)


def batched(batch_size: int, force: str, actions: np.ndarray) -> Callable[[], int]:
    env = SpaceshipVectorEnv(batch_size, env_index=[i % 20 for i in range(batch_size)], seed=0, force=force)
    env.reset()

    def chunk() -> int:
        for step_actions in actions:
            env.step(step_actions)
        return actions.shape[0] * batch_size

    return chunk


def bare_sim(batch_size: int, force: str, actions: np.ndarray) -> Callable[[], int]:
    sim = SpaceshipSim(batch_size, seed=0, env_index=[i % 20 for i in range(batch_size)], force=force)

    def chunk() -> int:
        for step_actions in actions:
            _, _, terminated, truncated = sim.step(step_actions)
            sim.reset(terminated | truncated)
        return actions.shape[0] * batch_size

    return chunk


def one_at_a_time(num_envs: int, force: str, actions: np.ndarray) -> Callable[[], int]:
    envs = [SpaceshipEnv(env_index=i % 20, force=force) for i in range(num_envs)]
    for i, env in enumerate(envs):
        env.reset(seed=i)

    def chunk() -> int:
        for step_actions in actions:
            for env, action in zip(envs, step_actions):
                _, _, terminated, truncated, _ = env.step(action)
                if terminated or truncated:
                    env.reset()
        return actions.shape[0] * num_envs

    return chunk


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--single-envs", type=int, default=64, help="envs in the one-at-a-time loop")
    parser.add_argument("--seconds", type=float, default=3.0, help="CPU seconds per measurement")
    parser.add_argument("--force", default="analytic", choices=["analytic", "grid"])
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    batch_actions = rng.uniform(-3, 3, size=(50, args.batch_size, 2)).astype(np.float32)
    single_actions = batch_actions[:, : args.single_envs]

    vector_rate = steps_per_second(batched(args.batch_size, args.force, batch_actions), args.seconds)
    sim_rate = steps_per_second(bare_sim(args.batch_size, args.force, batch_actions), args.seconds)
    single_rate = steps_per_second(one_at_a_time(args.single_envs, args.force, single_actions), args.seconds)
    print(f"Spaceship env steps per CPU second, force={args.force}")
    print(f"  SpaceshipVectorEnv, batch {args.batch_size:5d}: {vector_rate:14,.0f}")
    print(f"  SpaceshipSim.step,  batch {args.batch_size:5d}: {sim_rate:14,.0f}")
    print(f"  SpaceshipEnv one at a time ({args.single_envs} envs): {single_rate:10,.0f}")
    print(f"  ratio vector / one-at-a-time: {vector_rate / single_rate:.0f}x (bar: >= 30x)")


if __name__ == "__main__":
    main()
