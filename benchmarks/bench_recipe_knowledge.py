"""How much is knowing the other's recipe worth in the recipe game? Scripted players, no learning.

    python benchmarks/bench_recipe_knowledge.py                                   # the default rules, ~30 s
    python benchmarks/bench_recipe_knowledge.py --env-kwargs '{"recipe_size": 3, "num_ingredients": 5}'
    python benchmarks/bench_recipe_knowledge.py --against DIR/recipe.jsonl --model nom    # trained runs of bench_som

SOM can only beat NOM in the recipe game by as much as knowing the other's recipe is worth. This measures it
with two scripted players that differ only in that knowledge:

- **uninformed** walks to the nearest ingredient it still needs;
- **informed** knows the other's recipe and walks to the nearest ingredient both still need (the contested
  one) first, if any is left, then as the uninformed player.

Both move greedily (the longer axis first) and ignore the other player, who may block them. Every pairing
plays ``--games`` games per seat order from the same seeded layouts. The value of knowledge is the informed
player's win rate minus the uninformed one's in the same seat against the same uninformed opponent, averaged
over the two seats; "win - loss" is the informed player's head-to-head margin (seat advantage averaged out).

``--against RUNS --model M`` instead plays both scripted players, in both seats, against each seed's trained
``M`` saved by ``bench_som.py train`` (through ``bench_som``'s own ``match``), so a trained policy can be
placed on the same scale: a trained NOM that loses to the uninformed script has not learned the race yet. A
third scripted player never moves: what the trained policy wins against it is how often it finishes at all.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from bench_som import match, read_rows, saved_player, seeds_of, win_loss

from anew.envs.recipe_game import RecipeGameSim
from anew.errors import AnewError

GAME = "anew/RecipeGame-SOM-v0"
STAND = 4


def step_toward(position: np.ndarray, target: np.ndarray) -> int:
    """The coin game's action numbering: 0 up, 1 down, 2 left, 3 right; the longer axis first."""
    rows, columns = target - position
    if rows == 0 and columns == 0:
        return STAND
    if abs(rows) >= abs(columns):
        return 1 if rows > 0 else 0
    return 3 if columns > 0 else 2


def scripted_move(
    position: np.ndarray, items: np.ndarray, mine: np.ndarray, theirs: np.ndarray | None
) -> int:
    """One move toward the nearest item of a type in ``mine`` (still needed), or, when ``theirs`` (what the
    other still needs) is known, toward the nearest contested one while any is left."""
    cells = {int(items[r, c]): np.array([r, c]) for r, c in np.argwhere(items >= 0)}
    wanted = [k for k in np.flatnonzero(mine) if k in cells]
    if theirs is not None:
        wanted = [k for k in wanted if theirs[k]] or wanted
    if not wanted:
        return STAND
    nearest = min(wanted, key=lambda k: np.abs(cells[k] - position).sum())
    return step_toward(position, cells[nearest])


class ScriptedPlayer:
    """A scripted player in ``bench_som.match``: reads its seat's observation (and, informed, the other's
    recipe from ``info["goal"]``)."""

    def __init__(self, rules: RecipeGameSim, seat: int, informed: bool):
        self.needs, self.kinds, self.seat, self.informed = rules.needs, rules.num_ingredients, seat, informed

    def episode_start(self, mask: np.ndarray, explore: bool = False) -> None:
        pass

    def witness(self, *args) -> None:
        pass

    def choose(self, obs: np.ndarray, explore: bool, rng, info: dict) -> np.ndarray:
        k, seat = self.kinds, self.seat
        board = obs[:, seat]  # channels: self, other, own held (k), other's held (k), items (k), own recipe
        items = (board[:, 2 + 2 * k : 2 + 3 * k] * np.arange(1, k + 1)[:, None, None]).sum(1).astype(int) - 1
        held = board[:, 2 : 2 + 2 * k, 0, 0].reshape(-1, 2, k) > 0.5
        actions = np.full((len(obs), 2), STAND)
        for game in range(len(obs)):
            goals = info["goal"][game][[seat, 1 - seat]]
            position = np.argwhere(board[game, 0] > 0.5)[0]
            mine = self.needs[goals[0]] & ~held[game, 0]
            theirs = self.needs[goals[1]] & ~held[game, 1] if self.informed else None
            actions[game, seat] = scripted_move(position, items[game], mine, theirs)
        return actions


def play(env_kwargs: dict, informed: tuple[bool, bool], games: int, seed: int) -> np.ndarray:
    """Win rates ``[seat 0, seat 1, draw]`` of one scripted pairing over ``games`` games."""
    rules = RecipeGameSim(1, **env_kwargs)
    seats = [ScriptedPlayer(rules, seat, informed[seat]) for seat in (0, 1)]
    totals = match(*seats, GAME, games, seed, env_kwargs)
    return np.array([*win_loss(totals, 0), (totals[:, 0] == totals[:, 1]).mean()])


class StillPlayer(ScriptedPlayer):
    """Never moves: against it, a trained policy shows whether it can finish its recipe at all."""

    def choose(self, obs: np.ndarray, explore: bool, rng, info: dict) -> np.ndarray:
        return np.full((len(obs), 2), STAND)


def against_trained(runs: Path, model: str, games: int) -> None:
    """Both scripted players, both seats, against every seed's trained ``model`` in ``runs``."""
    torch.set_num_threads(1)
    rows = read_rows(runs)
    seeds_of(rows, model, runs)
    for row in [row for row in rows if row["model"] == model]:
        env_id, env_kwargs, seed = row["env"], row.get("env_kwargs", {}), row["seed"]
        rules = RecipeGameSim(1, **env_kwargs)
        config = row.get("config", {})
        trained = {
            seat: saved_player(runs, model, seed, seat, env_id, env_kwargs, model, config) for seat in (0, 1)
        }
        for kind in ("still", "uninformed", "informed"):
            for seat in (0, 1):  # the scripted player's seat
                script = (StillPlayer if kind == "still" else ScriptedPlayer)(rules, seat, kind == "informed")
                players = (script, trained[1]) if seat == 0 else (trained[0], script)
                totals = match(*players, env_id, games, 30_000 + seed, env_kwargs)
                win, loss = win_loss(totals, seat)
                print(
                    f"seed {seed}: {kind} script in seat {seat} vs trained "
                    f"{model}: script wins {win:.3f}, loses {loss:.3f}"
                )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--env-kwargs", default="{}", help="RecipeGameSim options as JSON")
    parser.add_argument("--games", type=int, default=3000, help="games per pairing and seat order")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--against", type=Path, help="a bench_som.py runs file (JSON lines) to play against")
    parser.add_argument("--model", default="nom", help="with --against: which trained model")
    args = parser.parse_args()
    if args.against is not None:
        if not args.against.is_file():
            parser.error(f"--against {args.against}: no such runs file (bench_som.py train --out writes one)")
        against_trained(args.against, args.model, args.games)
        return
    try:
        env_kwargs = json.loads(args.env_kwargs)
        RecipeGameSim(1, **env_kwargs)  # bad rules fail here, with the game's own message
    except json.JSONDecodeError as err:
        parser.error(f"--env-kwargs is not JSON ({err})")
    except (AnewError, TypeError) as err:
        parser.error(f"--env-kwargs: {err}")
    rates = {
        pairing: play(env_kwargs, pairing, args.games, args.seed)
        for pairing in [(True, False), (False, True), (False, False)]
    }
    for (first, second), (win0, win1, draw) in rates.items():
        names = ["informed" if x else "uninformed" for x in (first, second)]
        print(f"  seat 0 {names[0]:10s} seat 1 {names[1]:10s}: {win0:.3f} / {win1:.3f}, draws {draw:.3f}")
    baseline = rates[(False, False)]
    value = (rates[(True, False)][0] - baseline[0] + rates[(False, True)][1] - baseline[1]) / 2
    win = (rates[(True, False)][0] + rates[(False, True)][1]) / 2
    loss = (rates[(True, False)][1] + rates[(False, True)][0]) / 2
    print(
        f"{json.dumps(env_kwargs)}: value of knowing the other's recipe {value:+.3f} win rate; "
        f"informed vs uninformed win {win:.3f}, loss {loss:.3f}, win - loss {win - loss:+.3f} "
        f"({args.games} games per seat order)"
    )


if __name__ == "__main__":
    main()
