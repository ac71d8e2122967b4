"""Rainbow agent: every switch trains, targets, noise, determinism, state round trip, Dopamine layout, CLI."""

from __future__ import annotations

import dataclasses
import io
import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

from anew.agents.core import AgentSpec, TransitionBatch
from anew.agents.dqn import PRESETS as DQN_PRESETS
from anew.agents.dqn import DQNAgent, DQNConfig
from anew.agents.networks import MinAtarCNN, NatureCNN, make_torso
from anew.agents.noisy import NoisyLinear
from anew.agents.rainbow import PRESETS, RainbowAgent, RainbowConfig, default_preset, state_dict_from_qnetwork
from anew.errors import AnewError

GAMMA = 0.99
ALL_OFF = {
    "distributional": False,
    "n_step": 1,
    "prioritized": False,
    "dueling": False,
    "noisy": False,
    "double_q": False,
}


def small_config(**changes) -> RainbowConfig:
    base = dataclasses.replace(
        PRESETS["classic-control"],
        learning_starts=50,
        train_every=4,
        gradient_steps=1,
        target_update_every=20,
        buffer_size=1_000,
        batch_size=16,
        hidden=(32, 32),
    )
    return dataclasses.replace(base, **changes)


def cartpole_agent(seed: int = 0, **changes) -> RainbowAgent:
    torch.manual_seed(seed)
    env = gym.make("CartPole-v1")
    return RainbowAgent(
        small_config(**changes), AgentSpec(env.observation_space, env.action_space, num_envs=2, seed=seed)
    )


def drive(agent, steps: int, seed: int = 0) -> list[dict]:
    """Play two CartPole envs for ``steps`` vector steps, feeding the agent as the runner does."""
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


SWITCHES = {
    "dqn": {},
    "distributional": {"distributional": True},
    "n_step": {"n_step": 3},
    "prioritized": {"prioritized": True},
    "dueling": {"dueling": True},
    "noisy": {"noisy": True},
    "double_q": {"double_q": True},
    "all": {
        "distributional": True,
        "n_step": 3,
        "prioritized": True,
        "dueling": True,
        "noisy": True,
        "double_q": True,
    },
}


@pytest.mark.parametrize("name", SWITCHES)
def test_each_switch_trains(name: str) -> None:
    agent = cartpole_agent(**{**ALL_OFF, **SWITCHES[name]})
    before = [p.detach().clone() for p in agent.online.parameters()]
    logs = [log for log in drive(agent, 60) if log]
    assert agent.updates == len(range(52, 121, 4))
    assert logs and all(np.isfinite(log["losses/td_loss"]) for log in logs)
    assert all(not torch.equal(a, b) for a, b in zip(before, agent.online.parameters()))


def test_no_switches_is_dqn_step_for_step() -> None:
    """Rainbow with every part off draws the same weights and samples as DQN and takes the same steps."""
    rainbow = cartpole_agent(seed=4, **ALL_OFF)
    torch.manual_seed(4)
    env = gym.make("CartPole-v1")
    dqn_config = DQNConfig(**{f.name: getattr(rainbow.config, f.name) for f in dataclasses.fields(DQNConfig)})
    dqn = DQNAgent(dqn_config, AgentSpec(env.observation_space, env.action_space, num_envs=2, seed=4))
    rainbow_logs, dqn_logs = drive(rainbow, 80), drive(dqn, 80)
    for a, b in zip(rainbow_logs, dqn_logs):
        assert a.keys() == b.keys()
        for key in a:
            assert a[key] == pytest.approx(b[key], rel=1e-5, abs=1e-7), key


def test_rainbow_defaults_are_dopamine_full_rainbow() -> None:
    c = PRESETS["dopamine"]
    assert (c.lr, c.adam_eps, c.n_step, c.train_every, c.target_update_every, c.learning_starts) == (
        6.25e-5,
        1.5e-4,
        3,
        4,
        8_000,
        20_000,
    )
    assert c.distributional and c.prioritized and c.dueling and c.noisy and c.double_q
    assert (c.num_atoms, c.v_max, c.noisy_sigma0, c.batch_size, c.buffer_size) == (
        51,
        10.0,
        0.1,
        32,
        1_000_000,
    )
    der = PRESETS["der"]
    assert (der.n_step, der.train_every, der.learning_starts, der.target_update_every, der.lr) == (
        10,
        1,
        1_600,
        2_000,
        1e-4,
    )
    c51 = PRESETS["dopamine-c51"]
    assert (c51.lr, c51.adam_eps, c51.n_step, c51.prioritized, c51.noisy, c51.dueling) == (
        2.5e-4,
        3.125e-4,
        1,
        False,
        False,
        False,
    )
    assert default_preset("ALE/Pong-v5") == "dopamine"
    assert default_preset("anew/MinAtar-Breakout-v0") == "minatar"
    assert default_preset("CartPole-v1") == "classic-control"


# ---------------------------------------------------------------------- targets
def projected_by_hand(value: float, support: np.ndarray) -> np.ndarray:
    """All mass at ``value`` split between its two neighbouring atoms (the C51 projection of a point)."""
    value = float(np.clip(value, support[0], support[-1]))
    delta = support[1] - support[0]
    low = int(np.floor((value - support[0]) / delta + 1e-9))
    out = np.zeros(len(support))
    if low >= len(support) - 1:
        out[-1] = 1.0
        return out
    upper_share = (value - support[low]) / delta
    out[low], out[low + 1] = 1.0 - upper_share, upper_share
    return out


def test_distributional_target_uses_gamma_to_the_window_length_and_the_terminal_mask() -> None:
    """n = 3 windows that end by termination, by truncation, or not at all: discount = gamma^L (1 - terminal)."""
    agent = cartpole_agent(
        **{**ALL_OFF, "distributional": True, "n_step": 3, "v_min": -10.0, "v_max": 10.0, "gamma": GAMMA}
    )
    support = agent.support.numpy()
    peak = 38  # the target net puts (almost) all mass on atom 38 (z = 5.2) for every action
    with torch.no_grad():
        agent.target.head.out.weight.zero_()
        agent.target.head.out.bias.copy_(
            torch.full((2, 51), -50.0).index_fill_(1, torch.tensor([peak]), 50.0).flatten()
        )
    z_next = support[peak]

    def add(value: float, reward: float, terminated: bool = False, truncated: bool = False) -> None:
        obs = np.full((2, 4), value, np.float32)
        agent.replay.add(
            obs,
            np.zeros(2, np.int64),
            np.full(2, reward, np.float32),
            np.full(2, terminated),
            np.full(2, truncated),
            obs + 0.5,
        )

    add(0, 1.0), add(1, 2.0, terminated=True)  # rows 0, 1 (+ FINAL row 2)
    add(3, 1.0), add(4, 2.0, truncated=True)  # rows 3, 4 (+ FINAL row 5)
    add(6, 1.0), add(7, 2.0), add(8, 3.0), add(9, 0.0), add(10, 0.0)  # rows 6..10
    batch = agent.replay.transitions(np.array([0, 0, 0]), np.array([0, 3, 6]))
    target = agent.compute_targets(batch).numpy()

    two_steps = 1.0 + GAMMA * 2.0
    expected = np.stack(
        [
            projected_by_hand(two_steps, support),  # terminated after 2 steps: no bootstrap
            projected_by_hand(two_steps + GAMMA**2 * z_next, support),  # truncated after 2: gamma^2
            projected_by_hand(1.0 + GAMMA * 2.0 + GAMMA**2 * 3.0 + GAMMA**3 * z_next, support),  # full window
        ]
    )
    np.testing.assert_allclose(target, expected, atol=1e-5)
    assert not np.allclose(target[1], projected_by_hand(two_steps + GAMMA**3 * z_next, support), atol=1e-3)


def test_double_q_picks_the_online_argmax_and_the_target_values_it() -> None:
    agent = cartpole_agent(
        **{**ALL_OFF, "distributional": True, "double_q": True, "v_min": -10.0, "v_max": 10.0}
    )
    with torch.no_grad():  # online prefers action 1; the target has action 0 at +5.2, action 1 at -5.2
        agent.online.head.out.weight.zero_()
        online_bias = torch.full((2, 51), 0.0)
        online_bias[1, 50] = 50.0
        agent.online.head.out.bias.copy_(online_bias.flatten())
        agent.target.head.out.weight.zero_()
        target_bias = torch.full((2, 51), -50.0)
        target_bias[0, 38], target_bias[1, 12] = 50.0, 50.0
        agent.target.head.out.bias.copy_(target_bias.flatten())
    obs = np.zeros((2, 4), np.float32)
    for _ in range(6):
        agent.replay.add(
            obs, np.zeros(2, np.int64), np.zeros(2, np.float32), np.zeros(2, bool), np.zeros(2, bool), obs
        )
    target = agent.compute_targets(agent.replay.transitions(np.array([0]), np.array([0]))).numpy()[0]
    np.testing.assert_allclose(target, projected_by_hand(GAMMA * -5.2, agent.support.numpy()), atol=1e-5)


def test_prioritized_updates_use_the_per_example_loss_and_max_normalised_weights() -> None:
    agent = cartpole_agent(prioritized=True, beta_start=0.4, beta_end=1.0, beta_anneal_steps=100)
    captured = {}
    sample, update = agent.replay.sample, agent.replay.update_priorities

    def spy_sample(batch_size, beta=0.0):
        captured["beta"] = beta
        captured["batch"] = sample(batch_size, beta)
        return captured["batch"]

    def spy_update(indices, priorities):
        captured["priorities"] = np.asarray(priorities)
        update(indices, priorities)

    agent.replay.sample, agent.replay.update_priorities = spy_sample, spy_update
    logs = [log for log in drive(agent, 40) if log]
    assert captured["beta"] == pytest.approx(0.4 + 0.6 * (80 - 50) / 100)
    weights = captured["batch"].weights
    assert weights.max() == pytest.approx(1.0) and weights.min() < 1.0
    loss_terms = captured["priorities"] - 1e-10
    assert np.all(loss_terms >= 0)
    assert logs[-1]["losses/td_loss"] == pytest.approx(float(np.mean(weights * loss_terms)), rel=1e-5)
    last = dict(zip(captured["batch"].indices.tolist(), captured["priorities"]))  # repeated index: last wins
    leaves = agent.replay.tree.get(np.array(list(last)))
    np.testing.assert_allclose(leaves, np.sqrt(list(last.values())), rtol=1e-6)  # priority exponent 0.5


# ---------------------------------------------------------------------- noise
def test_noisy_agent_explores_by_noise_and_evaluates_deterministically() -> None:
    agent = cartpole_agent(noisy=True)
    assert agent.epsilon == 0.0
    obs = np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32)
    first = agent.act(obs, explore=False)
    noisy_layers = [m for m in agent.online.modules() if isinstance(m, NoisyLinear)]
    noise_before = [layer.noise_in.clone() for layer in noisy_layers]
    agent.act(obs, explore=True)  # draws fresh noise
    assert all(not torch.equal(a, layer.noise_in) for a, layer in zip(noise_before, noisy_layers))
    assert np.array_equal(agent.act(obs, explore=False), first)  # noise changed, evaluation did not
    agent.online.eval()
    with torch.no_grad():
        assert np.array_equal(agent.online(torch.from_numpy(obs)).argmax(1).numpy(), first)
    agent.online.train()
    assert agent.online.training


def test_noisy_hidden_moves_the_torso_dense_into_the_head_as_full_rainbow() -> None:
    env_obs = gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)
    config = dataclasses.replace(PRESETS["dopamine"], buffer_size=1_000)
    agent = RainbowAgent(config, AgentSpec(env_obs, gym.spaces.Discrete(6)))
    net = agent.online
    assert net.torso.dense is None and isinstance(net.head.hidden[0], NoisyLinear)
    assert (net.head.hidden[0].in_features, net.head.hidden[0].out_features) == (7744, 512)
    assert (net.head.out.out_features, net.head.value.out_features) == (6 * 51, 51)
    convs = (8 * 8 * 4 * 32 + 32) + (4 * 4 * 32 * 64 + 64) + (3 * 3 * 64 * 64 + 64)
    noisy = sum(2 * (i * o + o) for i, o in ((7744, 512), (512, 6 * 51), (512, 51)))  # mu and sigma
    assert sum(p.numel() for p in net.parameters()) == convs + noisy
    assert net.head.hidden[0].sigma0 == 0.1


def test_conv_only_torsos() -> None:
    assert NatureCNN(4, features=None)(torch.zeros(1, 4, 84, 84, dtype=torch.uint8)).shape == (1, 7744)
    assert MinAtarCNN(4, features=None)(torch.zeros(1, 4, 10, 10)).shape == (1, 1024)
    impala = make_torso("impala", (4, 10, 10), final_dense=False)
    assert impala(torch.zeros(2, 4, 10, 10)).shape == (2, impala.out_features) == (2, 128)
    assert make_torso("mlp", (4,), (64, 32), final_dense=False).out_features == 64


# ---------------------------------------------------------------------- determinism and state
def test_same_seed_same_numbers_and_state_round_trip() -> None:
    first, second = cartpole_agent(seed=3, noisy=True), cartpole_agent(seed=3, noisy=True)
    logs_a, logs_b = drive(first, 70), drive(second, 70)
    assert logs_a == logs_b and any(logs_a)
    for (name, a), b in zip(first.online.state_dict().items(), second.online.state_dict().values()):
        assert torch.equal(a, b), name

    buffer = io.BytesIO()
    torch.save(first.state_dict(), buffer)
    buffer.seek(0)
    restored = cartpole_agent(seed=99, noisy=True)
    restored.load_state_dict(torch.load(buffer, weights_only=True))
    obs = np.random.default_rng(0).normal(size=(32, 4)).astype(np.float32)
    assert np.array_equal(restored.act(obs, explore=False), first.act(obs, explore=False))
    assert np.array_equal(restored.act(obs, explore=True), first.act(obs, explore=True))  # same noise draws
    assert restored.steps == first.steps and restored.updates == first.updates


@pytest.mark.parametrize("agent_class", [RainbowAgent, DQNAgent])
def test_impala_torso_trains_on_minatar_shapes(agent_class) -> None:
    obs_space = gym.spaces.Box(0, 1, (4, 10, 10), np.uint8)
    preset = PRESETS["minatar"] if agent_class is RainbowAgent else DQN_PRESETS["classic-control"]
    config = dataclasses.replace(
        preset,
        torso="impala",
        buffer_size=500,
        learning_starts=20,
        batch_size=8,
        train_every=1,
        gradient_steps=1,
    )
    agent = agent_class(config, AgentSpec(obs_space, gym.spaces.Discrete(3), seed=1))
    assert "ImpalaCNN" in repr(agent.online)
    rng = np.random.default_rng(0)
    logs = []
    for _ in range(30):
        obs = rng.integers(0, 2, (1, 4, 10, 10), dtype=np.uint8)
        action = agent.act(obs)
        agent.observe(
            TransitionBatch(
                obs,
                action,
                np.ones(1, np.float32),
                np.zeros(1, bool),
                np.zeros(1, bool),
                rng.integers(0, 2, (1, 4, 10, 10), dtype=np.uint8),
            )
        )
        logs.append(agent.update())
    assert any(logs) and np.isfinite([log["losses/td_loss"] for log in logs if log]).all()


@pytest.mark.parametrize(
    "changes, match",
    [
        ({"num_atoms": 1}, "--num-atoms"),
        ({"v_min": 10.0, "v_max": 10.0}, "--v-min"),
        ({"beta_start": -1.0}, "--beta-start"),
    ],
)
def test_bad_settings_are_named(changes, match) -> None:
    with pytest.raises(AnewError, match=match):
        cartpole_agent(**changes)


# ---------------------------------------------------------------------- Dopamine checkpoint layout
def test_loads_a_converted_dopamine_rainbow_checkpoint(fixtures_dir: Path) -> None:
    from anew.reincarnation.formats import convert_dopamine_checkpoint

    folder = fixtures_dir / "dopamine" / "jax_rainbow_breakout"
    conversion = convert_dopamine_checkpoint(folder / "checkpoints", kind="rainbow")
    expected = np.load(folder / "q_values_expected.npz")
    config = dataclasses.replace(PRESETS["dopamine-rainbow"], buffer_size=1_000)
    agent = RainbowAgent(
        config, AgentSpec(gym.spaces.Box(0, 255, (4, 84, 84), np.uint8), gym.spaces.Discrete(4))
    )
    agent.online.load_state_dict(state_dict_from_qnetwork(conversion.state_dict, conversion.support))
    states = torch.from_numpy(expected["states"]).permute(0, 3, 1, 2)  # Dopamine stacks frames last
    with torch.no_grad():
        logits, q_values = agent.online.logits(states), agent.online(states)
    np.testing.assert_allclose(logits.numpy(), expected["logits"], atol=1e-5)
    np.testing.assert_allclose(q_values.numpy(), expected["q_values"], atol=1e-5)
    np.testing.assert_array_equal(agent.greedy_actions(states.numpy()), expected["q_values"].argmax(1))


# ---------------------------------------------------------------------- command line
QUICK = [
    "--threads",
    "1",
    "--eval-episodes",
    "2",
    "--learning-starts",
    "100",
    "--buffer-size",
    "2000",
    "--batch-size",
    "16",
]


@pytest.mark.parametrize("env_id, steps", [("CartPole-v1", 400), ("anew/MinAtar-Breakout-v0", 300)])
def test_cli_trains_rainbow(tmp_path: Path, env_id: str, steps: int) -> None:
    from anew.runners.cli import main

    if "MinAtar" in env_id:
        pytest.importorskip("minatar")
    run = tmp_path / "run"
    argv = [
        "train",
        "rainbow",
        "--env-id",
        env_id,
        "--run-dir",
        str(run),
        "--total-steps",
        str(steps),
        "--eval-every",
        str(steps),
        "--checkpoint-every",
        str(steps),
        *QUICK,
    ]
    assert main(argv) == 0
    document = json.loads((run / "eval.json").read_text())
    assert document["agent"] == "rainbow" and document["evaluations"][-1]["step"] == steps
    config = json.loads((run / "config.json").read_text())["agent_config"]
    assert config["distributional"] and config["noisy"]
    assert main(["resume", str(run), "--total-steps", str(steps + 100)]) == 0
