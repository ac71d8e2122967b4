"""SOM's learning checks (minutes): a frozen TOG network with SOM's inference in its place, and a short
`anew train som` run whose eval.json carries the inference accuracy. Runs go through the runner."""

from __future__ import annotations

import dataclasses

import pytest

import anew
from anew.agents.som import SOMAgent

COIN_GAME = "anew/CoinGame-SOM-v0"


@pytest.mark.learning
def test_som_inference_with_a_frozen_tog_network_recovers_the_goal_and_pays(tmp_path) -> None:
    """The issue's inference bar on a trained network: train TOG briefly, freeze it, and let SOM's inference
    replace the true goal. The estimate names the other's goal in >= 75% of last-quarter steps, and the
    team scores between playing with the true goal (TOG) and playing with a uniform estimate (no model)."""
    run = anew.train("som", env_id=COIN_GAME, other_model="tog", seed=0, num_envs=32, total_steps=150_000,
                     eval_every=150_000, eval_episodes=32, run_dir=tmp_path / "tog")  # fmt: skip
    tog = anew.load_agent(run)
    scores, accuracy = {}, {}
    for name, changes in (("tog", None), ("som", {}), ("uniform", {"inference_lr": 0.0})):
        agent = tog
        if changes is not None:  # the same frozen weights, the true goal replaced by SOM's estimate
            agent = SOMAgent(dataclasses.replace(tog.config, other_model="som", **changes), tog.spec)
            agent.network.load_state_dict(tog.network.state_dict())
        played = anew.evaluate(agent, COIN_GAME, episodes=512, seed=123)
        scores[name], accuracy[name] = sum(played.returns) / len(played.returns), played.extra
    assert accuracy["som"]["inference_accuracy_q4"] >= 0.75, accuracy["som"]
    assert scores["tog"] >= scores["som"] > scores["uniform"], scores


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
