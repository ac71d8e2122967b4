"""PPO: running statistics, the agent's bookkeeping, and short CLI runs (its pure maths: test_policy_losses)."""

from __future__ import annotations

import copy
import io
import json
import math
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

from anew.agents.core import AgentSpec, TransitionBatch
from anew.agents.policy_losses import gaussian_log_prob
from anew.agents.ppo import PPOAgent, PPOConfig, RunningMeanStd, default_preset
from anew.errors import AnewError

torch.set_num_threads(1)

CARTPOLE_OBS = gym.spaces.Box(-np.inf, np.inf, (4,), np.float32)


# ---------------------------------------------------------------------- running statistics
def test_running_mean_std_matches_numpy_over_batches() -> None:
    data = np.random.default_rng(0).normal(3.0, 2.0, size=(300, 2))
    rms = RunningMeanStd((2,))
    for chunk in np.split(data, [7, 100, 101]):
        rms.update(torch.as_tensor(chunk))
    np.testing.assert_allclose(rms.mean.numpy(), data.mean(0), rtol=1e-4)
    np.testing.assert_allclose(rms.var.numpy(), data.var(0), rtol=1e-4)


# ---------------------------------------------------------------------- the agent
def feed(agent: PPOAgent, steps: int, seed: int, truncate_at: int = -1) -> list[np.ndarray]:
    """Drive the agent with random observations and rewards as a runner would; returns its actions."""
    rng = np.random.default_rng(seed)
    n, shape = agent.num_envs, agent.obs_shape
    obs, taken = rng.normal(size=(n, *shape)).astype(np.float32), []
    for step in range(steps):
        actions = agent.act(obs, explore=True)
        taken.append(actions)
        next_obs = rng.normal(size=(n, *shape)).astype(np.float32)
        terminated = rng.random(n) < 0.05
        truncated = np.full(n, step == truncate_at) & ~terminated
        agent.observe(TransitionBatch(obs, actions, rng.normal(size=n), terminated, truncated, next_obs))
        agent.update()
        obs = next_obs
    return taken


def small_config(**changes) -> PPOConfig:
    return PPOConfig(
        **({"num_steps": 8, "num_minibatches": 2, "update_epochs": 2, "hidden": (16,)} | changes)
    )


def test_same_seed_same_run_other_seed_other_run() -> None:
    space = gym.spaces.Discrete(3)
    agents = [PPOAgent(small_config(), AgentSpec(CARTPOLE_OBS, space, 2, seed)) for seed in (5, 5, 6)]
    actions = [np.stack(feed(agent, 20, seed=0)) for agent in agents]
    assert np.array_equal(actions[0], actions[1])
    assert agents[0].updates == 2
    for a, b in zip(agents[0].network.parameters(), agents[1].network.parameters()):
        assert torch.equal(a, b)
    assert not np.array_equal(actions[0], actions[2])


def test_truncated_steps_keep_the_value_of_the_final_observation() -> None:
    agent = PPOAgent(small_config(), AgentSpec(CARTPOLE_OBS, gym.spaces.Discrete(2), 3, seed=0))
    obs = np.zeros((3, 4), np.float32)
    final = np.array([[1, 2, 3, 4], [4, 3, 2, 1], [0, 1, 0, 1]], np.float32)
    actions = agent.act(obs)
    batch = TransitionBatch(obs, actions, np.ones(3), np.array([True, False, False]),
                            np.array([False, True, False]), final)  # fmt: skip
    agent.observe(batch)
    assert agent.rollout["has_bootstrap"][0].tolist() == [0.0, 1.0, 0.0]
    expected = agent.network.value(torch.as_tensor(final[1:2])).item()
    assert agent.rollout["bootstrap_values"][0, 1].item() == pytest.approx(expected)
    assert agent.rollout["terminated"][0].tolist() == [1.0, 0.0, 0.0]
    assert agent.rollout["episode_over"][0].tolist() == [1.0, 1.0, 0.0]


def test_continuous_actions_are_clipped_but_log_probs_are_of_the_sample() -> None:
    space = gym.spaces.Box(np.array([-0.1, 0.0], np.float32), np.array([0.1, 5.0], np.float32))
    agent = PPOAgent(small_config(init_log_std=1.0), AgentSpec(CARTPOLE_OBS, space, 64, seed=0))
    obs = np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32)
    actions = agent.act(obs, explore=True)
    assert actions.shape == (64, 2) and actions.dtype == np.float32
    assert (actions >= space.low).all() and (actions <= space.high).all()
    sample = agent.pending.actions
    assert (sample.abs() > 1).any()  # some samples fall outside [-1, 1] and were clipped for the env
    head, _ = agent.network(torch.as_tensor(obs))
    expected = gaussian_log_prob(sample, head, agent.network.log_std.expand_as(head))
    torch.testing.assert_close(agent.pending.log_prob, expected)
    mode = agent.act(obs, explore=False)  # the mean, mapped onto the bounds
    mapped = space.low + (np.clip(head.detach().numpy(), -1, 1) + 1) / 2 * (space.high - space.low)
    np.testing.assert_allclose(mode, mapped, rtol=1e-5, atol=1e-6)


def test_evaluation_acting_is_greedy_and_leaves_the_rollout_alone() -> None:
    agent = PPOAgent(small_config(), AgentSpec(CARTPOLE_OBS, gym.spaces.Discrete(4), 5, seed=0))
    obs = np.random.default_rng(1).normal(size=(5, 4)).astype(np.float32)
    state = copy.deepcopy(agent.state_dict())
    greedy = agent.act(obs, explore=False)
    head, _ = agent.network(torch.as_tensor(obs))
    assert np.array_equal(greedy, head.argmax(-1).numpy())
    assert agent.pending is None
    assert torch.equal(agent.state_dict()["generator"], state["generator"])


def test_state_dict_round_trip_mid_rollout_continues_identically() -> None:
    config = small_config(normalize_obs=True, normalize_reward=True)
    space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
    original = PPOAgent(config, AgentSpec(CARTPOLE_OBS, space, 2, seed=3))
    feed(original, 13, seed=0, truncate_at=4)  # one update done, five rows into the next rollout
    buffer = io.BytesIO()
    torch.save(original.state_dict(), buffer)
    buffer.seek(0)
    restored = PPOAgent(config, AgentSpec(CARTPOLE_OBS, space, 2, seed=99))
    restored.load_state_dict(torch.load(buffer, weights_only=True))  # plain tensors and containers only
    assert restored.position == 5 and restored.steps == 26 and restored.updates == 1
    actions = [np.stack(feed(agent, 11, seed=1)) for agent in (original, restored)]
    np.testing.assert_array_equal(actions[0], actions[1])
    assert original.updates == restored.updates == 3
    for a, b in zip(original.network.parameters(), restored.network.parameters()):
        assert torch.equal(a, b)
    torch.testing.assert_close(original.obs_rms.var, restored.obs_rms.var)


def test_a_state_dict_loads_into_an_agent_with_another_number_of_envs_for_acting() -> None:
    trained = PPOAgent(
        small_config(normalize_obs=True), AgentSpec(CARTPOLE_OBS, gym.spaces.Discrete(3), 4, seed=0)
    )
    feed(trained, 11, seed=0)
    single = PPOAgent(
        small_config(normalize_obs=True), AgentSpec(CARTPOLE_OBS, gym.spaces.Discrete(3), 1, seed=1)
    )
    single.load_state_dict(trained.state_dict())
    obs = np.random.default_rng(2).normal(size=(6, 4)).astype(np.float32)
    assert np.array_equal(single.act(obs, explore=False), trained.act(obs, explore=False))
    assert single.position == 0 and single.steps == trained.steps
    feed(single, 9, seed=3)  # and it can go on learning with its own rollout
    assert single.updates == trained.updates + 1


def test_image_observations_use_a_shared_cnn_torso() -> None:
    obs_space = gym.spaces.Box(0, 1, (4, 10, 10), np.uint8)
    agent = PPOAgent(
        small_config(num_steps=2, num_minibatches=1), AgentSpec(obs_space, gym.spaces.Discrete(3), 2, seed=0)
    )
    assert agent.image_input and agent.rollout["obs"].dtype == torch.uint8
    obs = np.random.default_rng(0).integers(0, 2, size=(2, 4, 10, 10), dtype=np.uint8)
    for _ in range(2):
        actions = agent.act(obs)
        agent.observe(TransitionBatch(obs, actions, np.ones(2), np.zeros(2, bool), np.zeros(2, bool), obs))
    assert "losses/value_loss" in agent.update()


def test_bad_spaces_and_settings_are_named() -> None:
    with pytest.raises(AnewError, match="Discrete or Box"):
        PPOAgent(PPOConfig(), AgentSpec(CARTPOLE_OBS, gym.spaces.MultiDiscrete([2, 2])))
    with pytest.raises(AnewError, match="--num-minibatches"):
        PPOAgent(
            PPOConfig(num_steps=4, num_minibatches=8),
            AgentSpec(CARTPOLE_OBS, gym.spaces.Discrete(2), num_envs=1),
        )
    agent = PPOAgent(small_config(), AgentSpec(CARTPOLE_OBS, gym.spaces.Discrete(2)))
    with pytest.raises(AnewError, match="update"):
        feed_without_update = TransitionBatch(np.zeros((1, 4), np.float32), np.zeros(1, int), np.zeros(1),
                                              np.zeros(1, bool), np.zeros(1, bool), np.zeros((1, 4), np.float32))  # fmt: skip
        for _ in range(9):
            agent.observe(feed_without_update)


def test_default_presets() -> None:
    assert default_preset("CartPole-v1") == "classic-control"
    assert default_preset("Pendulum-v1") == "mujoco"
    assert default_preset("HalfCheetah-v5") == "mujoco"
    assert default_preset("ALE/Pong-v5") == "atari"
    assert default_preset("anew/LostSales-v0") == "inventory"


# ---------------------------------------------------------------------- through the command line
def train(tmp_path: Path, name: str, *flags: str) -> dict:
    from anew.runners.cli import main

    run_dir = tmp_path / name
    assert main(["train", "ppo", "--run-dir", str(run_dir), "--eval-episodes", "2", *flags]) == 0
    return json.loads((run_dir / "eval.json").read_text())


def test_cli_smoke_cartpole(tmp_path: Path) -> None:
    document = train(tmp_path, "cartpole", "--env-id", "CartPole-v1", "--total-steps", "256", "--num-envs", "2",
                     "--eval-every", "128", "--checkpoint-every", "256", "--num-steps", "32",
                     "--log-every", "64")  # fmt: skip
    assert document["agent"] == "ppo" and [e["step"] for e in document["evaluations"]] == [128, 256]
    assert document["config"]["agent_config"]["num_steps"] == 32
    lines = [json.loads(line) for line in (tmp_path / "cartpole" / "metrics.jsonl").read_text().splitlines()]
    logged = [line for line in lines if "losses/approx_kl" in line]
    assert len(logged) == 4, lines  # an update every 64 agent steps, each on a log step
    from anew.runners.cli import main

    assert (
        main(["evaluate", str(tmp_path / "cartpole"), "--episodes", "2"]) == 0
    )  # a 1-env agent from a 2-env run


def test_losses_of_rare_updates_are_logged_after_each_log_boundary(tmp_path: Path) -> None:
    # Updates every 64 agent steps, log boundaries at 100 and 200: the next update after each is logged.
    train(tmp_path, "sparse", "--env-id", "CartPole-v1", "--total-steps", "256", "--num-envs", "2",
          "--eval-every", "256", "--checkpoint-every", "256", "--num-steps", "32", "--log-every", "100")  # fmt: skip
    lines = [json.loads(line) for line in (tmp_path / "sparse" / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines if "losses/approx_kl" in line] == [128, 256]


def test_cli_smoke_pendulum(tmp_path: Path) -> None:
    document = train(tmp_path, "pendulum", "--env-id", "Pendulum-v1", "--total-steps", "400", "--num-steps", "100",
                     "--num-minibatches", "4", "--eval-every", "400", "--checkpoint-every", "400")  # fmt: skip
    assert document["config"]["run"]["preset"] == "mujoco"
    final = document["evaluations"][-1]
    assert len(final["returns"]) == 2 and all(length == 200 for length in final["lengths"])
    assert all(math.isfinite(r) for r in final["returns"])


def test_cli_smoke_lost_sales_uses_the_inventory_preset(tmp_path: Path) -> None:
    document = train(tmp_path, "lost-sales", "--env-id", "anew/LostSales-v0", "--total-steps", "64", "--num-envs",
                     "2", "--num-steps", "16", "--update-epochs", "1", "--num-minibatches", "2", "--eval-every",
                     "64", "--checkpoint-every", "64", "--eval-episodes", "1")  # fmt: skip
    assert document["config"]["run"]["preset"] == "inventory"
    final = document["evaluations"][-1]
    assert final["lengths"] == [1000] and final["returns"][0] < 0  # costs, never profits


def test_cli_resume_mid_rollout_equals_uninterrupted(tmp_path: Path) -> None:
    from anew.runners.cli import main

    flags = ["--env-id", "CartPole-v1", "--num-envs", "2", "--num-steps", "32", "--eval-every", "300",
             "--eval-episodes", "2", "--checkpoint-every", "300", "--seed", "4"]  # fmt: skip
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    assert main(["train", "ppo", "--run-dir", str(whole), "--total-steps", "600", *flags]) == 0
    assert (
        main(["train", "ppo", "--run-dir", str(cut), "--total-steps", "300", *flags]) == 0
    )  # stops mid-rollout
    assert main(["resume", str(cut), "--total-steps", "600"]) == 0
    final = "checkpoints/step_000000000600/agent.pt"
    a, b = (torch.load(d / final, weights_only=True)["agent"] for d in (whole, cut))
    for name, tensor in a["network"].items():
        assert torch.equal(tensor, b["network"][name]), name
    for name, tensor in a["rollout"].items():
        assert torch.equal(tensor, b["rollout"][name]), name
    assert (
        (a["position"], a["steps"], a["updates"]) == (b["position"], b["steps"], b["updates"]) == (12, 600, 9)
    )
