"""``anew solve``: exact optimal costs of inventory problems next to the classical policies' costs.

    anew solve lost-sales --lead-time 4 --p 19 [--demand-mean 5 --h 1] [--json]
    anew solve backlog --lead-time 2 --p 4
    anew solve s-S --K 5 --p 4 [--lead-time 0]

Exact numbers come from ``anew.envs.inventory_exact`` (relative value iteration, newsvendor,
Zheng-Federgruen); policies without a closed form are simulated on the batched simulator
(``--envs`` instances x ``--periods`` periods after ``--warmup``, with a standard error). Searches
over policy parameters (best base-stock level, capped base-stock (S, r)) use a smaller simulation
with common random numbers, then the winner is re-simulated at full size.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

import numpy as np
import torch
import tyro

from anew.agents.inventory_policies import (
    BaseStockPolicy,
    MyopicPolicy,
    SSPolicy,
    VectorBaseStockPolicy,
)
from anew.envs.inventory import InventoryConfig, InventorySim, inventory_step, simulate_policy
from anew.envs.inventory_exact import (
    backlog_optimum,
    best_constant_order,
    lost_sales_optimum,
    s_S_cost,
    s_S_optimum,
)
from anew.errors import AnewError
from anew.inventory_demand import DemandDistribution, convolve_pmf, expected_period_cost, quantile


@dataclass
class _Common:
    p: float = 4.0
    """penalty per lost (lost-sales) or backordered-per-period (backlog) unit"""
    h: float = 1.0
    """holding cost per unit per period"""
    demand_mean: float = 5.0
    """mean of the Poisson demand per period"""
    envs: int = 4000
    """parallel instances when a policy is simulated"""
    periods: int = 2000
    """periods per simulated instance"""
    warmup: int = 200
    """periods left out of simulated averages"""
    seed: int = 0
    """seed of the simulated demand paths"""
    json: bool = False
    """print JSON instead of a table"""


@dataclass
class LostSales(_Common):
    """Zipkin's lost-sales model: the exact optimum and classical heuristics."""

    lead_time: int = 2
    """periods between ordering and using an order (1 or more; the exact solver is fast up to 4)"""


@dataclass
class Backlog(_Common):
    """Backorders: base-stock at the newsvendor level is optimal."""

    lead_time: int = 2
    """periods between ordering and using an order (0 or more)"""


@dataclass
class SS(_Common):
    """Fixed order cost K with backorders: the optimal (s, S) by Zheng-Federgruen."""

    K: float = 5.0
    """fixed cost per order"""
    lead_time: int = 0
    """periods between ordering and using an order (0 or more)"""


Command = (
    Annotated[LostSales, tyro.conf.subcommand("lost-sales")]
    | Annotated[Backlog, tyro.conf.subcommand("backlog")]
    | Annotated[SS, tyro.conf.subcommand("s-S")]
)


def _row(
    policy: str, parameters: dict[str, Any], cost: float, se: float | None, method: str
) -> dict[str, Any]:
    return {
        "policy": policy,
        "parameters": parameters,
        "average_cost": cost,
        "standard_error": se,
        "method": method,
    }


def _simulator(args: _Common, config: InventoryConfig) -> Callable[..., tuple[float, float]]:
    def simulate(policy: Any, envs: int | None = None, periods: int | None = None) -> tuple[float, float]:
        return simulate_policy(
            config, policy.act, envs or args.envs, periods or args.periods, args.warmup, args.seed
        )

    return simulate


def base_stock_grid(
    config: InventoryConfig,
    levels: np.ndarray,
    caps: list[float],
    envs: int,
    periods: int,
    warmup: int,
    seed: int,
) -> np.ndarray:
    """Average cost of every capped base-stock (S, r) in one batched run with common demand paths.

    Returns an array [len(levels), len(caps)]; a cap of inf is plain base-stock.
    """
    grid = [(level, cap) for level in levels for cap in caps]
    level = torch.tensor([g[0] for g in grid], dtype=torch.float32).repeat_interleave(envs)
    cap = torch.tensor([g[1] for g in grid], dtype=torch.float32).repeat_interleave(envs)
    demand_source = InventorySim(config, envs, seed=seed)
    state = torch.zeros(len(level), config.state_size)
    total = torch.zeros(len(level), dtype=torch.float64)
    for t in range(periods):
        demand = demand_source.sample_demand().repeat(len(grid))
        order = torch.minimum(torch.relu(level - state.sum(dim=1)), cap)
        state, cost, _ = inventory_step(state, order, demand, config.lead_time, config.p, config.h)
        if t >= warmup:
            total += cost
    return (total.view(len(grid), envs).mean(dim=1) / (periods - warmup)).view(len(levels), len(caps)).numpy()


def solve_lost_sales(args: LostSales) -> dict[str, Any]:
    demand = DemandDistribution.poisson(args.demand_mean)
    pmf, L = demand.pmf(), args.lead_time
    optimum = lost_sales_optimum(L, args.p, args.h, demand)
    config = InventoryConfig(lead_time=L, p=args.p, h=args.h, demand=demand, max_order=10**6)
    simulate = _simulator(args, config)
    rows = [_row("optimal", {}, optimum.average_cost, None, "exact (relative value iteration)")]

    def simulated(name: str, policy: Any, parameters: dict[str, Any]) -> None:
        print(f"simulating {name} ...", file=sys.stderr)
        rows.append(_row(name, parameters, *simulate(policy), "simulation"))

    newsvendor = BaseStockPolicy.newsvendor(L, pmf, args.p, args.h)
    simulated("base-stock (newsvendor level)", newsvendor, {"S": newsvendor.level})
    print("searching base-stock and capped base-stock levels ...", file=sys.stderr)
    search = {
        "envs": min(args.envs, 1000),
        "periods": min(args.periods, args.warmup + 500),
        "warmup": args.warmup,
    }
    levels = np.arange(max(newsvendor.level - 8, 0), newsvendor.level + 1)
    uncapped = base_stock_grid(config, levels, [np.inf], seed=args.seed, **search)[:, 0]
    best = BaseStockPolicy(int(levels[np.argmin(uncapped)]), L)
    simulated("base-stock (best level)", best, {"S": best.level})
    # Capping lets a higher level pay off (Xin 2021): search S from the best uncapped level upwards.
    cap_levels = np.arange(best.level, best.level + 5)
    caps = np.arange(int(np.ceil(args.demand_mean)), quantile(pmf, args.p / (args.p + args.h)) + 2)
    costs = base_stock_grid(config, cap_levels, caps, seed=args.seed, **search)
    i, j = np.unravel_index(np.argmin(costs), costs.shape)
    capped = BaseStockPolicy(int(cap_levels[i]), L, cap=int(caps[j]))
    simulated("capped base-stock (best S, r)", capped, {"S": capped.level, "r": capped.cap})
    simulated("vector base-stock (Morton)", VectorBaseStockPolicy(L, pmf, args.p, args.h), {})
    simulated("myopic-1", MyopicPolicy(L, pmf, args.p, args.h, lookahead=1), {})
    simulated("myopic-2", MyopicPolicy(L, pmf, args.p, args.h, lookahead=2), {})
    r, cost = best_constant_order(args.p, args.h, demand)
    rows.append(_row("constant order (best r)", {"r": r}, cost, None, "exact (on-hand chain)"))
    return {"problem": "lost-sales", "parameters": _parameters(args), "rows": rows}


def solve_backlog(args: Backlog) -> dict[str, Any]:
    demand = DemandDistribution.poisson(args.demand_mean)
    optimum = backlog_optimum(args.lead_time, args.p, args.h, demand)
    lead_pmf = convolve_pmf(demand.pmf(), args.lead_time + 1)
    rows = [
        _row(
            "optimal = base-stock (newsvendor level)",
            {"S": optimum.level},
            optimum.average_cost,
            None,
            "exact",
        )
    ]
    for level in (optimum.level - 1, optimum.level + 1):
        cost = float(expected_period_cost(lead_pmf, np.array([level]), args.p, args.h)[0])
        rows.append(_row("base-stock", {"S": level}, cost, None, "exact"))
    config = InventoryConfig(
        lead_time=args.lead_time, p=args.p, h=args.h, demand=demand, backlog=True, max_order=10**6
    )
    print("simulating base-stock at the optimal level ...", file=sys.stderr)
    cost, se = _simulator(args, config)(BaseStockPolicy(optimum.level, args.lead_time))
    rows.append(_row("base-stock (simulated check)", {"S": optimum.level}, cost, se, "simulation"))
    return {"problem": "backlog", "parameters": _parameters(args), "rows": rows}


def solve_s_S(args: SS) -> dict[str, Any]:
    demand = DemandDistribution.poisson(args.demand_mean)
    solution = s_S_optimum(args.K, args.p, args.h, args.lead_time, demand)
    rows = [
        _row(
            "optimal (s, S)",
            {"s": solution.s, "S": solution.S},
            solution.average_cost,
            None,
            "exact (Zheng-Federgruen)",
        )
    ]
    pmf = demand.pmf()
    lead_pmf = convolve_pmf(pmf, args.lead_time + 1)
    level = quantile(lead_pmf, args.p / (args.p + args.h))
    offset = -len(lead_pmf) - 50
    G = expected_period_cost(lead_pmf, np.arange(offset, level + 10), args.p, args.h)
    rows.append(
        _row(
            "base-stock (order every period)",
            {"S": level},
            s_S_cost(level - 1, level, G, offset, pmf, args.K),
            None,
            "exact",
        )
    )
    config = InventoryConfig(
        lead_time=args.lead_time,
        p=args.p,
        h=args.h,
        demand=demand,
        backlog=True,
        fixed_cost=args.K,
        max_order=10**6,
    )
    print("simulating the optimal (s, S) ...", file=sys.stderr)
    cost, se = _simulator(args, config)(SSPolicy(solution.s, solution.S, args.lead_time))
    rows.append(_row("(s, S) (simulated check)", {"s": solution.s, "S": solution.S}, cost, se, "simulation"))
    return {"problem": "s-S", "parameters": _parameters(args), "rows": rows}


def _parameters(args: _Common) -> dict[str, Any]:
    skip = ("json", "envs", "periods", "warmup", "seed")
    return {key: value for key, value in vars(args).items() if key not in skip}


def format_table(result: dict[str, Any]) -> str:
    parameters = ", ".join(f"{key}={value}" for key, value in result["parameters"].items())
    lines = [f"{result['problem']}: {parameters} (Poisson demand; long-run average cost per period)", ""]
    header = ("policy", "parameters", "average cost", "method")
    body = []
    for row in result["rows"]:
        cost = f"{row['average_cost']:.4f}" + (
            f" ± {row['standard_error']:.4f}" if row["standard_error"] else ""
        )
        params = ", ".join(f"{key}={value}" for key, value in row["parameters"].items())
        body.append((row["policy"], params, cost, row["method"]))
    widths = [max(len(str(r[i])) for r in [header, *body]) for i in range(4)]
    for r in [header, tuple("-" * w for w in widths), *body]:
        lines.append("  ".join(str(cell).ljust(width) for cell, width in zip(r, widths)).rstrip())
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = tyro.cli(Command, args=argv, prog="anew solve")
    torch.set_num_threads(1)  # the simulations step small tensors: one thread is fastest
    if not (args.p > 0 and args.h > 0):
        raise AnewError(f"costs must be positive (got --p {args.p} --h {args.h}); e.g. --p 4 --h 1")
    if args.envs < 2:
        raise AnewError(f"--envs must be at least 2 to give a standard error, got {args.envs}")
    if isinstance(args, LostSales):
        result = solve_lost_sales(args)
    elif isinstance(args, Backlog):
        result = solve_backlog(args)
    else:
        result = solve_s_S(args)
    print(json.dumps(result, indent=1) if args.json else format_table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
