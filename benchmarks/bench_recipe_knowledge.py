"""How much is knowing the other's recipe worth in the recipe game? Scripted players, no learning.

    python benchmarks/bench_recipe_knowledge.py                                   # the default rules, ~30 s
    python benchmarks/bench_recipe_knowledge.py --env-kwargs '{"recipe_size": 3, "num_ingredients": 5}'

SOM can only beat NOM in the recipe game by as much as knowing the other's recipe is worth. This measures it
with two scripted players that differ only in that knowledge:

- **uninformed** walks to the nearest ingredient it still needs;
- **informed** knows the other's recipe and walks to the nearest ingredient both still need (the contested
  one) first, if any is left, then as the uninformed player.

Both move greedily (the longer axis first) and ignore the other player, who may block them. Every pairing
plays ``--games`` games per seat order from the same seeded layouts. The value of knowledge is the informed
player's win rate minus the uninformed one's in the same seat against the same uninformed opponent, averaged
over the two seats; "win - loss" is the informed player's head-to-head margin (seat advantage averaged out).
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from anew.envs.recipe_game import RecipeGameSim

STAND = 4


def step_toward(position: np.ndarray, target: np.ndarray) -> int:
    """The coin game's action numbering: 0 up, 1 down, 2 left, 3 right; the longer axis first."""
    rows, columns = target - position
    if rows == 0 and columns == 0:
        return STAND
    if abs(rows) >= abs(columns):
        return 1 if rows > 0 else 0
    return 3 if columns > 0 else 2


def scripted_action(sim: RecipeGameSim, game: int, me: int, informed: bool) -> int:
    needs, goals, held = sim.needs, sim.goals[game], sim.held[game]
    cells = {int(sim.items[game, r, c]): np.array([r, c]) for r, c in np.argwhere(sim.items[game] >= 0)}
    mine = [k for k in np.flatnonzero(needs[goals[me]] & ~held[me]) if k in cells]
    if informed:
        contested = [k for k in mine if needs[goals[1 - me], k] and not held[1 - me, k]]
        mine = contested or mine
    if not mine:
        return STAND
    position = sim.pos[game, me]
    nearest = min(mine, key=lambda k: np.abs(cells[k] - position).sum())
    return step_toward(position, cells[nearest])


def play(env_kwargs: dict, informed: tuple[bool, bool], games: int, seed: int) -> np.ndarray:
    """Win rates ``[seat 0, seat 1, draw]`` of one pairing over ``games`` games."""
    sim = RecipeGameSim(games, seed=seed, **env_kwargs)
    winner = np.full(games, -1)
    running = np.ones(games, dtype=bool)
    while running.any():
        mover = sim.t % 2
        actions = np.full((games, 2), STAND)
        for game in np.flatnonzero(running):
            actions[game, mover[game]] = scripted_action(sim, game, mover[game], informed[mover[game]])
        _, ended, _ = sim.step(actions)
        winner = np.where(running, sim.episode_metrics()["winner"], winner)
        running &= ~ended
    return np.array([(winner == 0).mean(), (winner == 1).mean(), (winner == -1).mean()])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--env-kwargs", default="{}", help="RecipeGameSim options as JSON")
    parser.add_argument("--games", type=int, default=3000, help="games per pairing and seat order")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    try:
        env_kwargs = json.loads(args.env_kwargs)
    except json.JSONDecodeError as err:
        parser.error(f"--env-kwargs is not JSON ({err})")
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
