"""DQN training speed: anew vs Stable-Baselines3 with the same settings, in one run.

    python benchmarks/bench_dqn_speed.py --env-id ALE/Breakout-v5 --steps 6000
    python benchmarks/bench_dqn_speed.py --env-id CartPole-v1 --steps 20000

Both train the same network (Nature CNN on Atari, MLP 256x256 on vectors) on the same env with the
same preprocessing, one gradient step of batch 32 every 4 agent steps after 1,000 warm-up steps.
Agent steps per second are measured over the whole run (warm-up included) with the best torch
thread count for each library on this machine, and printed side by side with their ratio.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import torch

from anew.agents.core import AgentSpec, TransitionBatch
from anew.agents.dqn import PRESETS, DQNAgent
from anew.envs import final_next_obs, make_env, make_vector_env


def anew_sps(env_id: str, steps: int, num_envs: int, backend: str, threads: int) -> float:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    envs = make_vector_env(env_id, num_envs, seed=0, backend=backend)
    config = dataclasses.replace(
        PRESETS["dopamine"], learning_starts=1_000, buffer_size=100_000, train_every=4, batch_size=32,
        target_update_every=8_000,
    )
    agent = DQNAgent(config, AgentSpec(envs.single_observation_space, envs.single_action_space, num_envs, seed=0))
    obs, _ = envs.reset(seed=0)
    start = time.perf_counter()
    for _ in range(steps // num_envs):
        action = agent.act(obs, explore=True)
        next_obs, reward, terminated, truncated, info = envs.step(action)
        done = terminated | truncated
        agent.observe(TransitionBatch(obs, action, reward, terminated, truncated, final_next_obs(next_obs, done, info)))
        agent.update()
        obs = next_obs
    elapsed = time.perf_counter() - start
    envs.close()
    return steps / elapsed


def sb3_sps(env_id: str, steps: int, threads: int) -> float:
    from stable_baselines3 import DQN

    torch.set_num_threads(threads)
    env = make_env(env_id)
    policy = "CnnPolicy" if len(env.observation_space.shape) == 3 else "MlpPolicy"
    kwargs = {} if policy == "CnnPolicy" else {"policy_kwargs": {"net_arch": [256, 256]}}
    model = DQN(policy, env, learning_rate=6.25e-5, buffer_size=100_000, learning_starts=1_000, batch_size=32,
                train_freq=4, gradient_steps=1, target_update_interval=8_000, device="cpu", seed=0, **kwargs)
    start = time.perf_counter()
    model.learn(total_timesteps=steps)
    return steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--env-id", default="ALE/Breakout-v5")
    parser.add_argument("--steps", type=int, default=6_000)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    atari = args.env_id.startswith("ALE/")
    rows = []
    for threads in args.threads:
        rows.append((f"SB3 DQN, 1 env, {threads} thread(s)", sb3_sps(args.env_id, args.steps, threads)))
        rows.append((f"anew DQN, 1 env, {threads} thread(s)", anew_sps(args.env_id, args.steps, 1, "seeded", threads)))
        rows.append((f"anew DQN, 4 envs, {threads} thread(s)", anew_sps(args.env_id, args.steps, 4, "seeded", threads)))
        if atari:
            rows.append((f"anew DQN, 4 envs ale backend, {threads} thread(s)",
                         anew_sps(args.env_id, args.steps, 4, "ale", threads)))
    best_sb3 = max(sps for name, sps in rows if name.startswith("SB3"))
    print(f"{args.env_id}, {args.steps} agent steps, update every 4 steps, batch 32, learning starts 1000")
    for name, sps in rows:
        print(f"  {name:45s} {sps:8.1f} steps/s   {sps / best_sb3:5.2f}x best SB3")
    best_anew = max(sps for name, sps in rows if name.startswith("anew"))
    print(f"ratio best anew / best SB3: {best_anew / best_sb3:.2f}x")


if __name__ == "__main__":
    main()
