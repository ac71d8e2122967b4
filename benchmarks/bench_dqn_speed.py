"""DQN training speed on equal work: anew vs Stable-Baselines3 in one process, interleaved.

    python benchmarks/bench_dqn_speed.py --env-id ALE/Breakout-v5                 # Nature VALID net, both
    python benchmarks/bench_dqn_speed.py --env-id anew/MinAtar-Breakout-v0        # MinAtar net, both

Equal work means: the same network (Atari: the Nature paper's VALID-padding CNN, ``--torso nature-valid``,
which is exactly SB3's ``NatureCNN``; MinAtar: conv 16 3x3 + dense 128, given to SB3 as a features
extractor below), the same env object (anew's ``make_env``: on Atari the ``dopamine`` protocol, 4-frame
stacks of 84x84 uint8, sticky actions 0.25, no life-loss terminals, so SB3 sees exactly what anew sees),
the same replay ratio and batch (Atari: one gradient step of batch 32 every 4 agent steps; MinAtar: one
every step, the MinAtar paper's ratio), the same buffer capacity, Adam with the same eps, and a fixed
epsilon (0.01 on Atari) so both run the network forward on (almost) every step.

Each library warms up its buffer untimed (``--warmup`` random steps), then short timed segments of
``--segment`` agent steps alternate between anew and SB3 at each thread count, ``--reps`` times, so both see
the same machine load; the median steps/s per library and thread count is reported with ``uptime``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import time

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from anew.agents.core import AgentSpec, TransitionBatch
from anew.agents.dqn import PRESETS, DQNAgent
from anew.agents.networks import MinAtarCNN, NatureCNN
from anew.envs import final_next_obs, make_env, make_vector_env


def load() -> str:
    """The 1-minute load average, to print with every number (the machine is shared)."""
    return f"load {os.getloadavg()[0]:.1f}"


@dataclasses.dataclass(frozen=True)
class Work:
    """What both libraries do per agent step."""

    env_id: str
    torso: str
    train_every: int
    lr: float
    adam_eps: float
    loss: str
    epsilon: float
    buffer_size: int
    warmup: int
    target_update_every: int


def work_for(env_id: str, torso: str) -> Work:
    if env_id.startswith("ALE/"):
        preset = PRESETS["dopamine"]
        return Work(env_id, torso, 4, preset.lr, preset.adam_eps, "mse", 0.01, 100_000, 1_000, 8_000)
    preset = PRESETS["minatar"]
    return Work(env_id, "minatar", 1, preset.lr, preset.adam_eps, "huber", 0.1, 100_000, 1_000, 1_000)


class AnewLoop:
    """anew DQN's own training loop (act, env step, observe, update) on ``num_envs`` seeded envs."""

    name = "anew"

    def __init__(self, work: Work, num_envs: int = 1, backend: str = "seeded"):
        torch.manual_seed(0)
        self.envs = make_vector_env(work.env_id, num_envs, seed=0, backend=backend)
        config = dataclasses.replace(
            PRESETS["dopamine" if work.env_id.startswith("ALE/") else "minatar"],
            torso=work.torso,
            learning_starts=work.warmup,
            buffer_size=work.buffer_size,
            train_every=work.train_every,
            batch_size=32,
            lr=work.lr,
            adam_eps=work.adam_eps,
            loss=work.loss,
            epsilon_start=work.epsilon,
            epsilon_end=work.epsilon,
            target_update_every=work.target_update_every,
        )
        spec = AgentSpec(self.envs.single_observation_space, self.envs.single_action_space, num_envs, seed=0)
        self.agent = DQNAgent(config, spec)
        self.num_envs = num_envs
        self.obs, _ = self.envs.reset(seed=0)
        self.run(work.warmup)

    def run(self, steps: int) -> float:
        """Train ``steps`` agent steps; return the seconds taken."""
        start = time.perf_counter()
        agent, envs, obs = self.agent, self.envs, self.obs
        for _ in range(steps // self.num_envs):
            action = agent.act(obs, explore=True)
            next_obs, reward, terminated, truncated, info = envs.step(action)
            done = terminated | truncated
            agent.observe(
                TransitionBatch(
                    obs, action, reward, terminated, truncated, final_next_obs(next_obs, done, info)
                )
            )
            agent.update()
            obs = next_obs
        self.obs = obs
        return time.perf_counter() - start


class MinAtarExtractor(nn.Module):
    """SB3 extractor: the MinAtar paper's torso (anew's ``MinAtarCNN``: conv 16 3x3, dense 128)."""

    def __init__(self, observation_space: gym.spaces.Box, features_dim: int = 128):
        super().__init__()
        channels, height, width = observation_space.shape
        self.torso = MinAtarCNN(channels, height, width, features=features_dim)
        self.features_dim = features_dim

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.torso(obs)


class NatureSameExtractor(nn.Module):
    """SB3 features extractor with Dopamine's SAME-padding Nature CNN (anew's), for the 'nature' rows."""

    def __init__(self, observation_space: gym.spaces.Box, features_dim: int = 512):
        super().__init__()
        self.torso = NatureCNN(observation_space.shape[0], features=features_dim, same=True)
        self.features_dim = features_dim

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.torso(obs)


class SB3Loop:
    """SB3 DQN's ``learn`` continued segment by segment on the same env as anew."""

    name = "SB3"

    def __init__(self, work: Work, same_padding: bool = False):
        from stable_baselines3 import DQN

        env = make_env(work.env_id)
        env.reset(seed=0)
        atari = work.env_id.startswith("ALE/")
        policy_kwargs: dict = {"optimizer_kwargs": {"eps": work.adam_eps}}
        if atari:
            policy = "CnnPolicy"  # SB3's NatureCNN is the VALID-padding net (3136 conv features)
            if same_padding:  # Dopamine's SAME net (anew's NatureCNN divides by 255 itself)
                policy_kwargs.update(features_extractor_class=NatureSameExtractor, normalize_images=False)
        else:
            policy = "MlpPolicy"
            policy_kwargs.update(features_extractor_class=MinAtarExtractor, net_arch=[])
        self.model = DQN(
            policy,
            env,
            learning_rate=work.lr,
            buffer_size=work.buffer_size,
            learning_starts=work.warmup,
            batch_size=32,
            train_freq=work.train_every,
            gradient_steps=1,
            target_update_interval=work.target_update_every,
            exploration_initial_eps=work.epsilon,
            exploration_final_eps=work.epsilon,
            device="cpu",
            seed=0,
            policy_kwargs=policy_kwargs,
        )
        self.model.learn(total_timesteps=work.warmup)

    def run(self, steps: int) -> float:
        start = time.perf_counter()
        self.model.learn(total_timesteps=steps, reset_num_timesteps=False)
        return time.perf_counter() - start


def network_check(anew_loop: AnewLoop, sb3_loop: SB3Loop) -> str:
    """Parameter counts of both Q-networks (equal when the networks are the same)."""
    count = lambda net: sum(p.numel() for p in net.parameters())
    return f"Q-net parameters: anew {count(anew_loop.agent.online):,}, SB3 {count(sb3_loop.model.q_net):,}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--env-id", default="ALE/Breakout-v5")
    parser.add_argument(
        "--torso",
        default="nature-valid",
        choices=["nature-valid", "nature"],
        help="Atari torso for anew (SB3 always trains the VALID one; 'nature' is not equal work)",
    )
    parser.add_argument("--segment", type=int, default=800, help="agent steps per timed segment")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1_000)
    parser.add_argument("--threads", type=int, nargs="+", default=[2, 1])
    args = parser.parse_args()
    work = dataclasses.replace(work_for(args.env_id, args.torso), warmup=args.warmup)
    print(f"start: {load()}; {work}")
    loops = [AnewLoop(work), SB3Loop(work)]
    print(network_check(*loops))
    rates: dict[tuple[str, int], list[float]] = {}
    for rep in range(args.reps):
        for threads in args.threads:
            torch.set_num_threads(threads)
            order = loops if rep % 2 == 0 else loops[::-1]  # alternate who goes first
            for loop in order:
                sps = args.segment / loop.run(args.segment)
                rates.setdefault((loop.name, threads), []).append(sps)
                print(
                    f"  rep {rep} {loop.name:4s} {threads} thread(s): {sps:7.1f} steps/s ({load()})",
                    flush=True,
                )
    print(f"{args.env_id}: {args.segment}-step segments x {args.reps}, medians ({load()}):")
    for threads in args.threads:
        anew, sb3 = (statistics.median(rates[(name, threads)]) for name in ("anew", "SB3"))
        print(
            f"  {threads} thread(s): anew {anew:7.1f}  SB3 {sb3:7.1f} steps/s  anew/SB3 {anew / sb3:.2f}x "
            f"(per-rep ratios {np.round(np.divide(rates[('anew', threads)], rates[('SB3', threads)]), 2)})"
        )


if __name__ == "__main__":
    main()
