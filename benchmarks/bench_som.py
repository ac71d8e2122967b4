"""SOM against its baselines on the SOM games: train, evaluate, compare (issue 14's bars).

    # one run per (model, seed); runs append to --out (JSON lines) and save their weights beside it
    python benchmarks/bench_som.py train --env anew/CoinGame-SOM-v0 --model som --seed 1 --steps 400000
    python benchmarks/bench_som.py summary --out /tmp/som_bench/coin.jsonl      # the table and the bars
    python benchmarks/bench_som.py match --env anew/RecipeGame-SOM-v0 --out /tmp/som_bench/recipe.jsonl

``train`` drives the agent exactly as ``anew train`` does (episode_start -> act -> step -> observe -> update
over a ``TeamVectorEnv`` of ``--envs`` games), then evaluates the final policy on ``--eval-games`` fresh games
(``explore=False``, its own generator): mean team return, the game's measures and, for SOM, the argmax
estimate's accuracy per quarter of the episode. ``summary`` reports, per model, the mean over seeds of the
final training reward (mean team return of the last 10% of training episodes) and of the evaluation return,
with standard errors over seeds, and checks TOG >= SOM > NOM (gap > 2 s.e.) and SOM's last-quarter accuracy
>= 75%. ``match`` plays each seed's SOM against the same seed's NOM head to head, both seats, and reports
SOM's win rate. ``speed`` times acting with and without the inference (its extra cost per step). Single thread.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import pickle
import time
from pathlib import Path

import numpy as np
import torch

from anew.agents.core import AgentSpec, TransitionBatch
from anew.agents.som import PRESETS, SOMAgent, default_preset
from anew.envs.multiagent import make_team_env


def build(
    env_id: str, games: int, seed: int, env_kwargs: dict | None = None, **changes
) -> tuple[SOMAgent, object]:
    envs = make_team_env(env_id, games, seed=seed, **(env_kwargs or {}))
    spec = AgentSpec(envs.single_observation_space, envs.single_action_space, games, seed, "cpu", envs.agents,
                     envs.agent_facts)  # fmt: skip
    config = dataclasses.replace(PRESETS[default_preset(env_id)], **changes)
    return SOMAgent(config, spec), envs


def train(agent: SOMAgent, envs, steps: int, seed: int, log_every: int = 0) -> dict[str, float]:
    """The runner's loop; returns the training curve's end and the wall time. ``log_every`` > 0 prints, every
    that many env steps, seat 0's win and loss rates (reward > 0, < 0) over its last 1,500 episodes."""
    obs, info = envs.reset(seed=seed)
    starting = np.ones(envs.num_envs, dtype=bool)
    running, finished, seat0 = np.zeros(envs.num_envs), [], np.zeros(envs.num_envs)
    seat0_finished: list[float] = []
    start, done_steps = time.perf_counter(), 0
    while done_steps < steps:
        agent.episode_start(starting, explore=True)
        actions = agent.act(obs, explore=True, info=info)
        next_obs, reward, terminated, truncated, next_info = envs.step(actions)
        extras = {k: v for k, v in info.items() if k != "active"} | {"team_reward": next_info["team_reward"]}
        agent.observe(
            TransitionBatch(obs, actions, reward, terminated, truncated, next_obs, info["active"], extras)
        )
        agent.update()
        starting = terminated | truncated
        running += next_info["team_reward"]
        seat0 += reward[:, 0]
        finished += running[starting].tolist()
        seat0_finished += seat0[starting].tolist()
        running[starting], seat0[starting] = 0.0, 0.0
        obs, info, done_steps = next_obs, next_info, done_steps + envs.num_envs
        if log_every and done_steps // log_every > (done_steps - envs.num_envs) // log_every:
            recent = np.array(seat0_finished[-1500:])
            print(f"{done_steps} steps: seat 0 wins {np.mean(recent > 0):.3f}, loses {np.mean(recent < 0):.3f} "
                  f"({time.perf_counter() - start:.0f} s)", flush=True)  # fmt: skip
    tail = finished[-max(len(finished) // 10, 1) :]
    return {"final_train_reward": float(np.mean(tail)), "train_episodes": len(finished),
            "train_seconds": time.perf_counter() - start, "diagnostics": agent.diagnostics()}  # fmt: skip


def evaluate(agent: SOMAgent, env_id: str, games: int, seed: int, env_kwargs: dict) -> dict[str, float]:
    """One episode in each of ``games`` fresh games with the evaluation policy and episode state."""
    envs = make_team_env(env_id, games, seed=seed, **env_kwargs)
    obs, info = envs.reset(seed=seed)
    rng = np.random.default_rng(seed)
    returns, over = np.zeros(games), np.zeros(games, dtype=bool)
    measures: dict[str, np.ndarray] = {}
    agent.episode_start(np.ones(games, dtype=bool), explore=False)
    while not over.all():
        obs, _, terminated, truncated, info = envs.step(agent.act(obs, explore=False, rng=rng, info=info))
        returns += np.where(over, 0.0, info["team_reward"])
        ends = (terminated | truncated) & ~over
        for name, values in info.get("final_metrics", {}).items():
            measures.setdefault(name, np.zeros(games))[ends] = np.asarray(values, dtype=float)[ends]
        over |= terminated | truncated
        agent.episode_start(terminated | truncated, explore=False)
    result = {"eval_return": float(returns.mean()), "eval_return_se": float(returns.std() / np.sqrt(games))}
    result |= {f"eval_{name}": float(values.mean()) for name, values in measures.items()}
    return result | agent.evaluation_measures()


def match(
    first: SOMAgent, second: SOMAgent, env_id: str, games: int, seed: int, env_kwargs: dict
) -> np.ndarray:
    """Rewards of ``first`` (seat 0) and ``second`` (seat 1) over one episode of ``games`` games: each chooses
    for its seat, both witness the moves played."""
    envs = make_team_env(env_id, games, seed=seed, **env_kwargs)
    obs, info = envs.reset(seed=seed)
    rng = np.random.default_rng(seed)
    totals, over = np.zeros((games, 2)), np.zeros(games, dtype=bool)
    for agent in (first, second):
        agent.episode_start(np.ones(games, dtype=bool), explore=False)
    while not over.all():
        actions = first.choose(obs, False, rng, info)
        actions[:, 1] = second.choose(obs, False, rng, info)[:, 1]
        for agent in (first, second):
            agent.witness(obs, actions, False, info)
        obs, reward, terminated, truncated, info = envs.step(actions)
        totals += np.where(over[:, None], 0.0, reward)
        over |= terminated | truncated
    return totals


def saved_player(
    out: Path, weights: str, seed: int, seat: int, env_id: str, env_kwargs: dict, model: str, config: dict
) -> SOMAgent:
    """The ``weights`` run of ``seed`` saved beside ``out``, acting for ``seat`` as ``model`` (not trained)."""
    config = config | {"opponent": "random", "seat": seat}
    agent, _ = build(env_id, 1, seed, env_kwargs, other_model=model, **config)
    path = out.with_name(f"{out.stem}_{weights}_{seed}.pt")
    try:
        agent.network.load_state_dict(torch.load(path, weights_only=True))
    except (OSError, RuntimeError, pickle.UnpicklingError) as error:
        raise SystemExit(
            f"{path}: cannot load these weights ({type(error).__name__}); rerun `train` for {weights}, seed {seed}"
        ) from None
    return agent


def seeds_of(rows: list[dict], model: str, out: Path) -> list[int]:
    """The seeds ``model`` was trained with in ``out``; an error naming the models there if none."""
    seeds = sorted({row["seed"] for row in rows if row["model"] == model})
    if not seeds:
        raise SystemExit(f"{out} holds no {model} run (it holds: {sorted({row['model'] for row in rows})})")
    return seeds


def win_loss(totals: np.ndarray, seat: int) -> tuple[float, float]:
    """Win and loss rates of ``seat`` over the games of a ``match``."""
    return float((totals[:, seat] > totals[:, 1 - seat]).mean()), float(
        (totals[:, seat] < totals[:, 1 - seat]).mean()
    )


def command_train(args: argparse.Namespace) -> None:
    torch.set_num_threads(1)
    env_kwargs = json.loads(args.env_kwargs)
    agent, envs = build(
        args.env, args.envs, args.seed, env_kwargs, other_model=args.model, **json.loads(args.config)
    )
    row = {"env": args.env, "env_kwargs": env_kwargs, "model": args.model, "seed": args.seed, "steps": args.steps,
           "envs": args.envs, "config": json.loads(args.config)}  # fmt: skip
    row |= train(agent, envs, args.steps, args.seed, args.log_every)
    row |= evaluate(agent, args.env, args.eval_games, 10_000 + args.seed, env_kwargs)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(agent.network.state_dict(), out.with_name(f"{out.stem}_{args.model}_{args.seed}.pt"))
    with out.open("a") as file:
        file.write(json.dumps(row) + "\n")
    print(json.dumps(row))


def mean_se(values: list[float]) -> tuple[float, float]:
    array = np.asarray(values, dtype=float)
    return float(array.mean()), float(array.std(ddof=1) / np.sqrt(len(array))) if len(array) > 1 else 0.0


def read_rows(out: Path) -> list[dict]:
    """The runs recorded in ``out``, one JSON object per line."""
    return [json.loads(line) for line in out.read_text().splitlines() if line.strip()]


def command_summary(args: argparse.Namespace) -> None:
    rows = read_rows(Path(args.out))
    table: dict[str, dict[str, tuple[float, float]]] = {}
    for model in sorted({row["model"] for row in rows}):
        mine = [row for row in rows if row["model"] == model]
        keys = [k for k in mine[0] if k.startswith(("final_train_reward", "eval_", "inference_accuracy"))]
        table[model] = {k: mean_se([row[k] for row in mine if k in row]) for k in keys}
        minutes = np.mean([row["train_seconds"] for row in mine]) / 60
        cells = ", ".join(
            f"{k} {m:.3f} ± {s:.3f}" for k, (m, s) in table[model].items() if not k.endswith("_se")
        )
        print(f"{model}: {len(mine)} seeds, {mine[0]['steps']} steps, {minutes:.1f} min/run: {cells}")
    if {"som", "nom", "tog"} <= set(table):
        som, nom, tog = (table[m]["final_train_reward"] for m in ("som", "nom", "tog"))
        gap_se = float(np.hypot(som[1], nom[1]))
        print(f"TOG >= SOM: {tog[0] >= som[0]}; SOM > NOM by {som[0] - nom[0]:.3f} (2 s.e. = {2 * gap_se:.3f}): "
              f"{som[0] - nom[0] > 2 * gap_se}")  # fmt: skip
    if "som" in table and "inference_accuracy_q4" in table["som"]:
        q4 = table["som"]["inference_accuracy_q4"][0]
        print(f"SOM last-quarter accuracy {q4:.3f} >= 0.75: {q4 >= 0.75}")


def command_match(args: argparse.Namespace) -> None:
    """The ``--first`` run's weights (SOM's by default), played as ``--first-as`` with ``--config`` changes on
    top of the run's own config, against the same seed's NOM (with its own), in both seats."""
    torch.set_num_threads(1)
    out, wins, env_kwargs = Path(args.out), [], json.loads(args.env_kwargs)
    rows = read_rows(out)
    configs = {(row["model"], row["seed"]): row.get("config", {}) for row in rows}
    seeds = seeds_of(rows, args.first, out)
    plays_as = args.first_as or args.first
    for seed in seeds:
        players = {}
        for role, weights, model, changes in (
            ("first", args.first, plays_as, configs[args.first, seed] | json.loads(args.config)),
            ("nom", "nom", "nom", configs.get(("nom", seed), {})),
        ):
            for seat in (0, 1):
                players[role, seat] = saved_player(
                    out, weights, seed, seat, args.env, env_kwargs, model, changes
                )
        for seat in (0, 1):  # the seat of the first player
            seated = [players["first", seat], players["nom", 1 - seat]][:: 1 if seat == 0 else -1]
            totals = match(seated[0], seated[1], args.env, args.games, 20_000 + seed, env_kwargs)
            win, losses = win_loss(totals, seat)
            wins.append(win)
            print(
                f"seed {seed}: {args.first} as {plays_as} in seat {seat}: win rate {wins[-1]:.3f}, loss rate {losses:.3f}"
            )
    mean, se = mean_se(wins)
    print(
        f"{args.first} as {plays_as} vs NOM head to head: win rate {mean:.3f} ± {se:.3f} over {len(wins)} (seed, seat) matches"
    )


def command_speed(args: argparse.Namespace) -> None:
    """Acting cost per vector step of SOM (choose + inference) against NOM (choose only), same network size, in
    CPU seconds of this single-threaded process."""
    torch.set_num_threads(1)
    for games in (32, 256):
        seconds = {}
        for model in ("nom", "som"):
            agent, envs = build(args.env, games, 0, other_model=model)
            obs, info = envs.reset(seed=0)
            agent.episode_start(np.ones(games, dtype=bool), explore=True)
            steps, start = 200, time.process_time()  # CPU time: robust to other jobs on the machine
            for _ in range(steps):
                obs, _, terminated, truncated, info = envs.step(agent.act(obs, explore=True, info=info))
                agent.pending = None  # acting only: nothing to learn from
                agent.episode_start(terminated | truncated, explore=True)
            seconds[model] = (time.process_time() - start) / steps
        extra = seconds["som"] - seconds["nom"]
        print(f"{games} games: NOM {seconds['nom'] * 1e3:.2f} ms/step, SOM {seconds['som'] * 1e3:.2f} ms/step; "
              f"inference {extra * 1e3:.2f} ms per vector step = {extra / games * 1e6:.1f} us per game step")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("command", choices=("train", "summary", "match", "speed"))
    parser.add_argument("--env", default="anew/CoinGame-SOM-v0")
    parser.add_argument("--model", default="som", choices=("som", "nom", "tog", "ipp", "spp"))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--steps", type=int, default=400_000, help="env steps of all games together")
    parser.add_argument("--envs", type=int, default=32, help="games per batch")
    parser.add_argument("--eval-games", type=int, default=1024)
    parser.add_argument("--games", type=int, default=1024, help="games per match and seat")
    parser.add_argument("--first", default="som", help="match: whose weights play NOM (a model in --out)")
    parser.add_argument(
        "--first-as", default="", help="match: the model those weights play as (default: --first)"
    )
    parser.add_argument("--config", default="{}", help="SOMConfig changes as JSON")
    parser.add_argument(
        "--log-every", type=int, default=0, help="train: print seat 0's recent win/loss every N env steps"
    )
    parser.add_argument(
        "--env-kwargs", default="{}", help='the game\'s options as JSON, e.g. {"door_layout": "wall"}'
    )
    parser.add_argument("--out", default="/tmp/som_bench/coin.jsonl")
    args = parser.parse_args()
    for flag in ("config", "env_kwargs"):
        try:
            json.loads(getattr(args, flag))
        except json.JSONDecodeError as error:
            parser.error(f"--{flag.replace('_', '-')} must be a JSON object ({error})")
    if args.command in ("summary", "match") and not Path(args.out).exists():
        parser.error(f"--out {args.out} does not exist: run `train` with the same --out first")
    commands = {
        "train": command_train,
        "summary": command_summary,
        "match": command_match,
        "speed": command_speed,
    }
    commands[args.command](args)


if __name__ == "__main__":
    main()
