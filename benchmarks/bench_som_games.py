"""SOM games: episodes per second of each batched game with random moves, and OpenSpiel's coin_game.

    python benchmarks/bench_som_games.py                       # ~30 s
    python benchmarks/bench_som_games.py --batch 256 --steps 2000 --json /tmp/som_speed.json

Each anew game runs ``--batch`` games through its runner face (``TeamVectorEnv``: observations for both
slots, autoreset at episode end) for ``--steps`` steps with uniformly random moves; an episode is
counted when it ends. The OpenSpiel peer plays the same number of coin_game episodes as anew's coin
game finished (chance phase included, random legal moves, one episode after another as OpenSpiel's
Python API runs them), and the script prints the ratio. Single thread, one process.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from anew.envs.multiagent import make_team_env

GAMES = ("anew/CoinGame-SOM-v0", "anew/RecipeGame-SOM-v0", "anew/DoorGame-SOM-v0")


def run_batched(env_id: str, batch: int, steps: int, seed: int = 0) -> dict[str, float]:
    """Random play of ``batch`` games for ``steps`` steps; episodes finished per second."""
    env = make_team_env(env_id, batch, seed=seed)
    rng = np.random.default_rng(seed)
    actions = rng.integers(0, env.single_action_space.n, (steps, batch, 2))
    env.reset(seed=seed)
    episodes = 0
    start = time.perf_counter()
    for step_actions in actions:
        _, _, terminated, truncated, _ = env.step(step_actions)
        episodes += int((terminated | truncated).sum())
    seconds = time.perf_counter() - start
    return {
        "episodes": episodes,
        "seconds": seconds,
        "episodes_per_s": episodes / seconds,
        "game_steps_per_s": steps * batch / seconds,
    }


def run_openspiel(episodes: int, seed: int = 0) -> dict[str, float]:
    """``episodes`` random OpenSpiel coin_game episodes, one after another."""
    import pyspiel

    game = pyspiel.load_game("coin_game")
    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    for _ in range(episodes):
        state = game.new_initial_state()
        while state.is_chance_node():
            outcomes = state.chance_outcomes()
            state.apply_action(outcomes[rng.integers(len(outcomes))][0])
        while not state.is_terminal():
            state.apply_action(int(rng.integers(5)))  # every move is legal in coin_game
        state.returns()
    seconds = time.perf_counter() - start
    return {"episodes": episodes, "seconds": seconds, "episodes_per_s": episodes / seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--json", default=None, help="also write the numbers to this file")
    args = parser.parse_args()
    results: dict[str, dict[str, float]] = {}
    for env_id in GAMES:
        results[env_id] = run_batched(env_id, args.batch, args.steps)
        r = results[env_id]
        print(
            f"{env_id:26s} batch {args.batch}: {r['episodes']:7d} episodes in {r['seconds']:6.2f} s = "
            f"{r['episodes_per_s']:9.0f} episodes/s ({r['game_steps_per_s']:,.0f} game steps/s)"
        )
    try:
        peer = run_openspiel(results[GAMES[0]]["episodes"])
    except ModuleNotFoundError:
        print("OpenSpiel not installed: pip install open_spiel for the peer")
    else:
        results["openspiel/coin_game"] = peer
        ratio = results[GAMES[0]]["episodes_per_s"] / peer["episodes_per_s"]
        print(
            f"{'openspiel coin_game':26s} one by one: {peer['episodes']:7d} episodes in {peer['seconds']:6.2f} s = "
            f"{peer['episodes_per_s']:9.0f} episodes/s; anew's batched coin game is {ratio:.1f}x faster"
        )
        results["ratio_coin_vs_openspiel"] = {"ratio": ratio}
    if args.json:
        with open(args.json, "w") as file:
            json.dump({"batch": args.batch, "steps": args.steps, "results": results}, file, indent=2)


if __name__ == "__main__":
    main()
