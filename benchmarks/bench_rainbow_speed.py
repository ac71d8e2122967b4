"""Rainbow training speed vs anew DQN on the same env, in one run.

    python benchmarks/bench_rainbow_speed.py --env-id ALE/Breakout-v5 --steps 6000
    python benchmarks/bench_rainbow_speed.py --env-id anew/MinAtar-Breakout-v0 --steps 20000 --threads 1

Every agent plays one env with the env's default protocol (Atari: Dopamine's) and takes one gradient
step of batch 32 every 4 agent steps after 1,000 warm-up steps, into a 100k replay. The agents:

- anew DQN (``dopamine`` preset: Nature CNN, uniform replay, 1-step MSE);
- anew Rainbow ``dopamine`` preset: all six parts (C51, 3-step, prioritized, dueling, noisy with the
  512 layer noisy, double Q; noise redrawn before every act and gradient step);
- anew Rainbow ``dopamine-rainbow`` preset: C51 + 3-step + prioritized (Dopamine's JaxRainbowAgent).

Agent steps per second cover the whole loop (acting, env, replay, learning, warm-up included) and
are printed with their ratio to DQN at the same thread count: per second of wall time, and per second
of this process's CPU time (the fairer number on a machine shared with other jobs, whose load shifts
between the agents' turns).
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import torch

from anew.agents.core import AgentSpec, TransitionBatch
from anew.agents.dqn import PRESETS as DQN_PRESETS
from anew.agents.dqn import DQNAgent
from anew.agents.rainbow import PRESETS as RAINBOW_PRESETS
from anew.agents.rainbow import RainbowAgent
from anew.envs import final_next_obs, make_vector_env

SCHEDULE = {
    "learning_starts": 1_000,
    "buffer_size": 100_000,
    "train_every": 4,
    "gradient_steps": 1,
    "batch_size": 32,
    "target_update_every": 8_000,
}


def agent_sps(kind: str, env_id: str, steps: int, threads: int) -> tuple[float, float]:
    """(agent steps per wall-clock second, agent steps per CPU second)."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    envs = make_vector_env(env_id, 1, seed=0)
    obs_space, act_space = envs.single_observation_space, envs.single_action_space
    if kind == "dqn":
        agent = DQNAgent(
            dataclasses.replace(DQN_PRESETS["dopamine"], **SCHEDULE),
            AgentSpec(obs_space, act_space, 1, seed=0),
        )
    else:
        agent = RainbowAgent(
            dataclasses.replace(RAINBOW_PRESETS[kind], **SCHEDULE), AgentSpec(obs_space, act_space, 1, seed=0)
        )
    obs, _ = envs.reset(seed=0)
    start, start_cpu = time.perf_counter(), time.process_time()
    for _ in range(steps):
        action = agent.act(obs, explore=True)
        next_obs, reward, terminated, truncated, info = envs.step(action)
        done = terminated | truncated
        agent.observe(
            TransitionBatch(obs, action, reward, terminated, truncated, final_next_obs(next_obs, done, info))
        )
        agent.update()
        obs = next_obs
    elapsed, cpu = time.perf_counter() - start, time.process_time() - start_cpu
    envs.close()
    return steps / elapsed, steps / cpu


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--env-id", default="ALE/Breakout-v5")
    parser.add_argument("--steps", type=int, default=6_000)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    print(
        f"{args.env_id}, {args.steps} agent steps, 1 env, update every 4 steps, batch 32, learning starts 1000"
    )
    for threads in args.threads:
        dqn, dqn_cpu = agent_sps("dqn", args.env_id, args.steps, threads)
        print(
            f"  {'anew DQN (dopamine)':34s} {threads} thread(s) {dqn:7.1f} steps/s {dqn_cpu:7.1f} steps/CPU-s"
        )
        for preset in ("dopamine", "dopamine-rainbow"):
            sps, cpu = agent_sps(preset, args.env_id, args.steps, threads)
            print(
                f"  {'anew Rainbow (' + preset + ')':34s} {threads} thread(s) {sps:7.1f} steps/s {cpu:7.1f} "
                f"steps/CPU-s   {sps / dqn:5.2f}x DQN (wall), {cpu / dqn_cpu:5.2f}x DQN (CPU)"
            )


if __name__ == "__main__":
    main()
