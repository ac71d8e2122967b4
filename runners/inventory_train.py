"""Train DirectBackprop on an anew inventory env and write a run directory (DESIGN.md section 4).

    python -m anew.runners.inventory_train --env-id anew/LostSales-v0 --lead-time 2 --p 4

The runner owns the simulator: it builds the batched simulator behind the env id and hands the
agent a differentiable ``rollout`` callable (agents never import envs). Evaluation:
- LostSales / Backlog: ``eval_envs`` instances x ``eval_periods`` periods; average cost per period
  after ``eval_warmup`` periods, with the exact optimum and the optimality gap;
- HistoryReplay / VendorConstraints: held-out products (another synthetic seed), return per
  product window, and the newsvendor baseline's return on the same products;
- CapacitatedMultiProduct: return per instance and the capacity-violation rate.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from anew import __version__
from anew.agents.directbackprop import DirectBackpropAgent, DirectBackpropConfig
from anew.agents.inventory_policies import NewsvendorReplayPolicy
from anew.envs.inventory_exact import backlog_optimum, lost_sales_optimum
from anew.envs.inventory_gym import ENV_IDS, make_sim
from anew.errors import AnewError

SINGLE_PRODUCT = ("anew/LostSales-v0", "anew/Backlog-v0")


@dataclass
class InventoryTrainConfig:
    """Train DirectBackprop on an inventory env."""

    env_id: str = "anew/LostSales-v0"
    """inventory env id (anew/LostSales-v0, anew/Backlog-v0, anew/HistoryReplay-v0, ...)"""
    lead_time: int = 2
    """lead time L (LostSales/Backlog)"""
    p: float = 4.0
    """lost-sales / backorder penalty per unit (LostSales/Backlog)"""
    h: float = 1.0
    """holding cost per unit per period (LostSales/Backlog)"""
    demand_mean: float = 5.0
    """Poisson demand mean (LostSales/Backlog)"""
    seed: int = 0
    """seed of the network, training paths and evaluation"""
    batch_size: int = 512
    """sample paths per gradient step"""
    horizon: int = 16
    """periods per training rollout (LostSales/Backlog; the replay envs roll whole episodes)"""
    eval_envs: int = 1000
    """instances (or held-out products) in the evaluation"""
    eval_periods: int = 2000
    """periods per evaluation instance (LostSales/Backlog)"""
    eval_warmup: int = 200
    """periods left out of the average cost (LostSales/Backlog)"""
    torch_threads: int = 1
    """CPU threads for torch (small networks run fastest on one)"""
    log_every: int = 50
    """updates between metric lines"""
    runs_dir: str = "runs"
    """parent folder of the run directory"""
    agent: DirectBackpropConfig = field(default_factory=DirectBackpropConfig)
    """DirectBackprop hyperparameters"""
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    """extra env options (see anew.envs.inventory_gym.make_sim)"""


def env_options(config: InventoryTrainConfig) -> dict[str, Any]:
    if config.env_id not in ENV_IDS:
        raise AnewError(
            f"DirectBackprop trains on inventory envs only; --env-id must be one of {', '.join(ENV_IDS)}"
        )
    if config.env_id in SINGLE_PRODUCT and config.eval_periods <= config.eval_warmup:
        raise AnewError(
            f"--eval-periods ({config.eval_periods}) must exceed --eval-warmup ({config.eval_warmup}); raise it"
        )
    if config.batch_size < 1 or config.eval_envs < 2:
        raise AnewError("--batch-size must be >= 1 and --eval-envs >= 2 (for a standard error)")
    if config.env_id in SINGLE_PRODUCT:
        options = {
            "lead_time": config.lead_time,
            "p": config.p,
            "h": config.h,
            "demand_mean": config.demand_mean,
        }
        return options | {"max_order": 1000} | config.env_kwargs  # the policy bounds its own orders
    return dict(config.env_kwargs)


def optimal_cost(config: InventoryTrainConfig) -> float | None:
    """The exact optimum of the single-product instance (None where none is known)."""
    if config.env_id not in SINGLE_PRODUCT or set(config.env_kwargs) - {"max_order"}:
        return None
    if config.env_id == "anew/LostSales-v0":
        from anew.inventory_demand import DemandDistribution

        demand = DemandDistribution.poisson(config.demand_mean)
        return lost_sales_optimum(config.lead_time, config.p, config.h, demand).average_cost
    from anew.inventory_demand import DemandDistribution

    return backlog_optimum(
        config.lead_time, config.p, config.h, DemandDistribution.poisson(config.demand_mean)
    ).average_cost


def _run_episodes(sim, act, periods: int) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Step ``act`` through ``periods`` periods; per-instance rewards [B, T] and summed info."""
    obs = sim.reset(10_000)  # the same evaluation paths (and products) for every policy
    rewards, totals = [], {}
    for _ in range(periods):
        obs, reward, over, info = sim.step(torch.as_tensor(np.asarray(act(obs.numpy())), dtype=torch.float32))
        rewards.append(reward.numpy().astype(np.float64))
        for key, value in info.items():
            totals[key] = totals.get(key, 0.0) + value.numpy().astype(np.float64)
        if bool(over.all()):
            break
    return np.stack(rewards, axis=1), np.asarray(len(rewards)), totals


def evaluate(config: InventoryTrainConfig, agent: DirectBackpropAgent) -> dict[str, Any]:
    """One evaluation entry: {"returns", "lengths", "extra"} (the step is added by the caller)."""
    options = env_options(config)
    if config.env_id in SINGLE_PRODUCT:
        sim, _, _ = make_sim(config.env_id, config.eval_envs, seed=config.seed + 10_000, **options)
        extra: dict[str, Any] = {"warmup": config.eval_warmup}
        for rounded in (True, False):
            agent.config.round_orders = rounded
            rewards, _, _ = _run_episodes(sim, agent.act, config.eval_periods)
            per_instance = -rewards[:, config.eval_warmup :].mean(axis=1)
            suffix = "" if rounded else "_continuous"
            extra["average_cost" + suffix] = float(per_instance.mean())
            extra["average_cost_se" + suffix] = float(per_instance.std(ddof=1) / np.sqrt(len(per_instance)))
            if rounded:
                returns = rewards.sum(axis=1)
        agent.config.round_orders = True
        optimum = optimal_cost(config)
        if optimum is not None:
            extra["optimal_cost"] = optimum
            extra["optimality_gap"] = extra["average_cost"] / optimum - 1.0
        return {"returns": returns.tolist(), "lengths": [config.eval_periods] * len(returns), "extra": extra}

    held_out = options | {"synthetic_seed": options.get("synthetic_seed", 0) + 1}
    sim, _, _ = make_sim(config.env_id, config.eval_envs, seed=config.seed + 10_000, **held_out)
    rewards, length, totals = _run_episodes(sim, agent.act, 10**9)
    returns = rewards.sum(axis=1)
    extra = {"average_reward": float(rewards.mean())}
    if config.env_id == "anew/CapacitatedMultiProduct-v0":
        extra["capacity_violation_rate"] = float(totals["capacity_violation"].mean() / length)
        extra["capacity_excess_per_period"] = float(totals["capacity_excess"].mean() / length)
    else:
        history = sim.history
        baseline = NewsvendorReplayPolicy(sim.lags, history.mean_lead_time(), sim.config.max_order)
        base_rewards, _, _ = _run_episodes(sim, baseline.act, 10**9)
        extra["newsvendor_return"] = float(base_rewards.sum(axis=1).mean())
        extra["improvement_over_newsvendor"] = float(returns.mean() / base_rewards.sum(axis=1).mean() - 1.0)
    return {"returns": returns.tolist(), "lengths": [int(length)] * len(returns), "extra": extra}


def _agent_defaults(config: InventoryTrainConfig) -> DirectBackpropConfig:
    agent = config.agent
    if config.env_id not in SINGLE_PRODUCT:
        agent.round_orders = False
        if config.env_id == "anew/CapacitatedMultiProduct-v0":
            agent.action_dim = int(config.env_kwargs.get("num_products", 5))
    return agent


def train_directbackprop(config: InventoryTrainConfig) -> Path:
    """Train, evaluate, and write ``runs/<env>__directbackprop__<seed>__<time>/``; returns that path."""
    from torch.utils.tensorboard import SummaryWriter

    torch.set_num_threads(config.torch_threads)
    options = env_options(config)
    agent_config = _agent_defaults(config)
    single = config.env_id in SINGLE_PRODUCT
    train_sim, obs_space, _ = make_sim(config.env_id, config.batch_size, seed=config.seed, **options)
    periods = config.horizon if single else None
    # an agent step is one simulated period of one sample path
    steps_per_update = config.batch_size * (periods or options.get("periods", 104))

    def rollout(policy, carry):
        return train_sim.rollout(policy, config.batch_size, periods, carry)

    agent = DirectBackpropAgent(obs_space.shape[0], agent_config, rollout)
    run_dir = (
        Path(config.runs_dir)
        / f"{config.env_id.replace('/', '_')}__directbackprop__{config.seed}__{int(time.time())}"
    )
    run_dir.mkdir(parents=True, exist_ok=False)
    (run_dir / "config.json").write_text(
        json.dumps({"anew_version": __version__, **asdict(config)}, indent=2, default=str)
    )
    writer = SummaryWriter(str(run_dir))
    writer.add_text(
        "hyperparameters",
        "|param|value|\n|-|-|\n" + "\n".join(f"|{k}|{v}|" for k, v in asdict(config).items()),
    )
    start, interactive = time.time(), sys.stderr.isatty()
    with open(run_dir / "metrics.jsonl", "w") as metrics_file:
        for update in range(1, agent_config.updates + 1):
            metrics = agent.update()
            step = update * steps_per_update
            if update % config.log_every == 0 or update == agent_config.updates:
                metrics["charts/SPS"] = step / (time.time() - start)
                for key, value in metrics.items():
                    writer.add_scalar(key, value, step)
                metrics_file.write(json.dumps({"step": step, "update": update, **metrics}) + "\n")
                metrics_file.flush()
                line = f"update {update}/{agent_config.updates} loss {metrics['losses/policy_loss']:.4f}"
                print(line, file=sys.stderr, end="\r" if interactive else "\n")
    result = evaluate(config, agent)
    result["step"] = step
    for key, value in result["extra"].items():
        if isinstance(value, float):
            writer.add_scalar(f"eval/{key}", value, step)
    writer.add_scalar("eval/episodic_return", float(np.mean(result["returns"])), step)
    writer.close()
    save_checkpoint(run_dir, agent, step)
    eval_record = {"agent": "directbackprop", "env_id": config.env_id, "seed": config.seed,
                   "config": json.loads(json.dumps(asdict(config), default=str)), "evaluations": [result]}  # fmt: skip
    (run_dir / "eval.json").write_text(json.dumps(eval_record, indent=1))
    return run_dir


def save_checkpoint(run_dir: Path, agent: DirectBackpropAgent, step: int) -> Path:
    """checkpoints/step_<N>/ written under a temporary name, then renamed (complete or absent)."""
    final = run_dir / "checkpoints" / f"step_{step}"
    partial = final.with_name(final.name + ".tmp")
    partial.mkdir(parents=True, exist_ok=True)
    torch.save(agent.state_dict(), partial / "agent.pt")
    (partial / "runner_state.json").write_text(json.dumps({"step": step, "updates": agent.updates_done}))
    os.replace(partial, final)
    return final


def main(argv: list[str] | None = None) -> int:
    import tyro

    config = tyro.cli(InventoryTrainConfig, args=argv)
    run_dir = train_directbackprop(config)
    evaluation = json.loads((run_dir / "eval.json").read_text())["evaluations"][-1]["extra"]
    print(json.dumps({"run_dir": str(run_dir), **evaluation}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
