"""SOM's learning checks (minutes each): a frozen TOG network with SOM's inference in its place, and a short
`anew train som` run whose eval.json carries the inference accuracy."""

from __future__ import annotations

import numpy as np
import pytest

from anew.agents.core import AgentSpec, TransitionBatch
from anew.agents.som import SOMAgent, SOMConfig
from anew.envs.multiagent import TeamVectorEnv, make_team_env

COIN_GAME = "anew/CoinGame-SOM-v0"


def build(games: int, seed: int, config: SOMConfig) -> tuple[SOMAgent, TeamVectorEnv]:
    envs = make_team_env(COIN_GAME, games, seed=seed)
    spec = AgentSpec(envs.single_observation_space, envs.single_action_space, games, seed, "cpu", envs.agents,
                     envs.agent_facts)  # fmt: skip
    return SOMAgent(config, spec), envs


def train_coin_game(other_model: str, steps: int, seed: int = 0, games: int = 32) -> tuple[SOMAgent, float]:
    """Train on the coin game with the runner's loop; the mean team return of the last 10% of episodes."""
    agent, envs = build(games, seed, SOMConfig(other_model=other_model))
    obs, info = envs.reset(seed=seed)
    starting, running, returns = np.ones(games, dtype=bool), np.zeros(games), []
    for _ in range(steps // games):
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
        returns += running[starting].tolist()
        running[starting] = 0.0
        obs, info = next_obs, next_info
    return agent, float(np.mean(returns[-len(returns) // 10 :]))


def play_coin_games(agent: SOMAgent, games: int = 512, seed: int = 123) -> tuple[float, dict[str, float]]:
    """Evaluation episodes (``explore=False``): mean team return and the estimates' accuracy per quarter."""
    envs = make_team_env(COIN_GAME, games, seed=seed)
    obs, info = envs.reset(seed=seed)
    rng, total = np.random.default_rng(seed), np.zeros(games)
    agent.episode_start(np.ones(games, dtype=bool), explore=False)
    for _ in range(20):  # one coin-game episode
        obs, _, terminated, truncated, info = envs.step(agent.act(obs, False, rng=rng, info=info))
        total += info["team_reward"]
        agent.episode_start(terminated | truncated, explore=False)
    return float(total.mean()), agent.evaluation_measures()


@pytest.mark.learning
def test_som_inference_with_a_frozen_tog_network_recovers_the_goal_and_pays() -> None:
    """The issue's inference bar on a trained network: train TOG briefly, freeze it, and let SOM's inference
    replace the true goal. The estimate names the other's goal in >= 75% of last-quarter steps, and the
    team scores between playing with the true goal (TOG) and playing with a uniform estimate (no model)."""
    tog, _ = train_coin_game("tog", 150_000)
    models = {}
    for name, changes in (("som", {}), ("uniform", {"inference_lr": 0.0})):
        models[name], _ = build(1, 0, SOMConfig(other_model="som", **changes))
        models[name].network.load_state_dict(tog.network.state_dict())
    true_goal, _ = play_coin_games(tog)
    inferred, accuracy = play_coin_games(models["som"])
    uniform, _ = play_coin_games(models["uniform"])
    assert accuracy["inference_accuracy_q4"] >= 0.75, accuracy
    assert true_goal >= inferred > uniform, (true_goal, inferred, uniform)


@pytest.mark.parametrize("other_model", ["som", "nom"])
def test_a_run_writes_the_inference_accuracy_into_eval_json(tmp_path, other_model: str) -> None:
    """`anew train som` puts SOM's goal-inference accuracy per quarter of the evaluation episodes into each
    evaluation's `extra` (the baselines infer nothing, so theirs has no such entry)."""
    import json

    from anew.runners.cli import main

    argv = ["train", "som", "--env-id", "anew/CoinGame-SOM-v0", "--other-model", other_model, "--seed", "2",
            "--total-steps", "1200", "--eval-every", "600", "--eval-episodes", "6", "--run-dir", str(tmp_path / "r")]  # fmt: skip
    assert main(argv) == 0
    evaluations = json.loads((tmp_path / "r" / "eval.json").read_text())["evaluations"]
    quarters = {f"inference_accuracy_q{q}" for q in range(1, 5)}
    for evaluation in evaluations:
        assert "mean_good_coins" in evaluation["extra"]
        if other_model == "som":
            assert quarters <= set(evaluation["extra"])
            assert all(0.0 <= evaluation["extra"][name] <= 1.0 for name in quarters)
        else:
            assert not quarters & set(evaluation["extra"])
