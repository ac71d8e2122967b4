"""PPO on Zipkin's lost-sales problem: optimality gap against the exact optimum (issue 6's PPO bar: 3%).

    python benchmarks/bench_ppo_inventory.py --lead-time 2 --p 4 --total-steps 1000000 --num-envs 64

Trains anew's PPOAgent with the ``inventory`` preset through the same act -> step -> observe -> update
loop as ``anew train``, but on the batched simulator's vector view (``InventoryVectorEnv``: all
instances in one tensor step, 1000-period episodes, truncated, SAME_STEP autoreset) instead of
per-instance envs, which is only faster. The rollout per env is shortened so that a batch keeps the
preset's size (num_steps x num_envs = 2048). The greedy policy (most likely order) is then simulated
on 1000 instances x 2000 periods; the average cost per period after 200 warm-up periods is compared
with relative value iteration's exact optimum.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import time

import torch

from anew.agents.core import AgentSpec, TransitionBatch
from anew.agents.ppo import PRESETS, PPOAgent
from anew.envs import final_next_obs
from anew.envs.inventory import InventoryConfig, simulate_policy
from anew.envs.inventory_exact import lost_sales_optimum
from anew.envs.inventory_gym import InventoryVectorEnv
from anew.inventory_demand import DemandDistribution


def train(args: argparse.Namespace) -> tuple[PPOAgent, float]:
    preset = PRESETS["inventory"]
    batch = preset.num_steps * 8  # the preset's batch with its recommended --num-envs 8
    config = dataclasses.replace(
        preset, num_steps=max(batch // args.num_envs, 1), anneal_steps=args.total_steps, **args.overrides
    )
    envs = InventoryVectorEnv("anew/LostSales-v0", args.num_envs, max_episode_steps=1000,
                              autoreset_mode="SameStep", seed=args.seed, lead_time=args.lead_time, p=args.p,
                              action_type=args.action_type)  # fmt: skip
    agent = PPOAgent(
        config, AgentSpec(envs.single_observation_space, envs.single_action_space, args.num_envs, args.seed)
    )
    obs, _ = envs.reset(seed=args.seed)
    start, step = time.perf_counter(), 0
    while step < args.total_steps:
        actions = agent.act(obs, explore=True)
        next_obs, reward, terminated, truncated, info = envs.step(actions)
        done = terminated | truncated
        agent.observe(TransitionBatch(obs, actions, reward, terminated, truncated,
                                      final_next_obs(next_obs, done, info)))  # fmt: skip
        metrics = agent.update()
        obs, step = next_obs, step + args.num_envs
        if metrics and agent.updates % 100 == 0:
            print(
                f"step {step}: " + ", ".join(f"{k.split('/')[1]} {v:.4g}" for k, v in metrics.items()),
                flush=True,
            )
    return agent, time.perf_counter() - start


def parse_override(item: str) -> tuple[str, object]:
    """``field=value`` -> (field, value as a Python literal, or the bare string: ``activation=relu``)."""
    key, _, text = item.partition("=")
    if not hasattr(PRESETS["inventory"], key):
        raise SystemExit(f"--set {item}: PPOConfig has no field {key!r}")
    try:
        return key, ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return key, text


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lead-time", type=int, default=2)
    parser.add_argument("--p", type=float, default=4.0)
    parser.add_argument("--total-steps", type=int, default=1_000_000)
    parser.add_argument("--num-envs", type=int, default=64)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--action-type",
        choices=("discrete", "continuous"),
        default="discrete",
        help="order index 0..max_order, or a Gaussian order in [0, max_order] (not rounded)",
    )
    parser.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE", help="override preset fields")
    args = parser.parse_args()
    args.overrides = dict(parse_override(item) for item in args.set)
    torch.set_num_threads(1)
    agent, seconds = train(args)
    instance = InventoryConfig(lead_time=args.lead_time, p=args.p)  # orders are clipped to its max_order
    cost, se = simulate_policy(
        instance, lambda state: agent.act(state, explore=False), 1000, 2000, 200, seed=12345
    )
    optimum = lost_sales_optimum(args.lead_time, args.p, 1.0, DemandDistribution.poisson(5.0)).average_cost
    print(f"PPO ({args.action_type}) lost sales L={args.lead_time} p={args.p} seed {args.seed}: {args.total_steps} steps in "
          f"{seconds:.0f} s ({args.total_steps / seconds:.0f} steps/s); average cost {cost:.4f} ± {se:.4f} "
          f"(optimum {optimum:.4f}, gap {100 * (cost / optimum - 1):.2f}%)")  # fmt: skip


if __name__ == "__main__":
    main()
