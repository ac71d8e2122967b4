"""DQN agent behaviour: schedule of updates, determinism, save/load round trip, Dopamine layout."""

from __future__ import annotations

import dataclasses

import gymnasium as gym
import numpy as np
import pytest
import torch

from anew.agents.core import AgentSpec, TransitionBatch
from anew.agents.dqn import PRESETS, DQNAgent
from anew.agents.networks import NatureCNN, QNetwork


def small_config(**changes):
    base = dataclasses.replace(
        PRESETS["classic-control"],
        learning_starts=50,
        train_every=4,
        gradient_steps=1,
        target_update_every=20,
        buffer_size=1_000,
        batch_size=16,
    )
    return dataclasses.replace(base, **changes)


def drive(agent: DQNAgent, steps: int, seed: int = 0) -> list[dict]:
    env = gym.vector.SyncVectorEnv(
        [lambda: gym.make("CartPole-v1")] * 2, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP
    )
    obs, _ = env.reset(seed=seed)
    logs = []
    for _ in range(steps):
        action = agent.act(obs, explore=True)
        next_obs, reward, term, trunc, info = env.step(action)
        real_next = next_obs.copy()
        for i in np.flatnonzero(term | trunc):
            real_next[i] = info["final_obs"][i]
        agent.observe(TransitionBatch(obs, action, reward, term, trunc, real_next))
        logs.append(agent.update())
        obs = next_obs
    return logs


def make_agent(seed: int = 0, **changes) -> DQNAgent:
    torch.manual_seed(seed)
    env = gym.make("CartPole-v1")
    return DQNAgent(
        small_config(**changes), AgentSpec(env.observation_space, env.action_space, num_envs=2, seed=seed)
    )


def test_updates_follow_the_schedule() -> None:
    agent = make_agent()
    drive(agent, 60)  # 120 agent steps, learning from step 50, one update every 4 steps
    assert agent.steps == 120
    assert agent.updates == len(range(52, 121, 4))
    assert agent.last_sync_period == 120 // 20


def test_learning_rate_decays_linearly_after_learning_starts() -> None:
    agent = make_agent(lr=1e-3, lr_end=1e-4, lr_decay_steps=100)
    drive(agent, 25)  # 50 agent steps: decay starts at learning_starts = 50
    assert agent.optimizer.param_groups[0]["lr"] == pytest.approx(1e-3)
    drive(agent, 25)  # 100 steps: halfway
    assert agent.optimizer.param_groups[0]["lr"] == pytest.approx(5.5e-4)
    drive(agent, 50)  # 200 steps: done, and it stays there
    assert agent.optimizer.param_groups[0]["lr"] == pytest.approx(1e-4)
    assert make_agent(lr=1e-3).optimizer.param_groups[0]["lr"] == 1e-3  # 0 decay steps: constant


def test_same_seed_same_numbers_and_state_round_trip() -> None:
    first, second = make_agent(seed=3), make_agent(seed=3)
    logs_a, logs_b = drive(first, 80), drive(second, 80)
    assert logs_a == logs_b
    for (name, a), b in zip(first.online.state_dict().items(), second.online.state_dict().values()):
        assert torch.equal(a, b), name
    restored = make_agent(seed=99)
    restored.load_state_dict(first.state_dict())
    obs = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    assert np.array_equal(restored.greedy_actions(obs), first.greedy_actions(obs))
    assert restored.steps == first.steps and restored.updates == first.updates
    assert restored.rng.random() == first.rng.random()


def test_double_q_and_huber_options_train() -> None:
    agent = make_agent(double_q=True, loss="huber", n_step=3)
    logs = [log for log in drive(agent, 60) if log]
    assert logs and all(np.isfinite(log["losses/td_loss"]) for log in logs)


def test_nature_cnn_matches_dopamine_layout() -> None:
    net = QNetwork(NatureCNN(4), num_actions=6)
    assert sum(p.numel() for p in net.parameters()) == 4_046_502  # Dopamine's count for 6 actions
    assert net.torso.dense.in_features == 7744
    out = net(torch.zeros(2, 4, 84, 84, dtype=torch.uint8))
    assert out.shape == (2, 6)


@pytest.mark.parametrize("space", [gym.spaces.Box(-1, 1, (2,)), gym.spaces.MultiDiscrete([2, 2])])
def test_rejects_non_discrete_actions(space) -> None:
    from anew.errors import AnewError

    with pytest.raises(AnewError, match="discrete action space"):
        DQNAgent(small_config(), AgentSpec(gym.spaces.Box(-1, 1, (4,)), space))
