"""One behaviour tested across every registered agent (Stable-Baselines3 style): built from the spec, actions
of the right shape, ``state_dict`` round trip, same seed -> same actions, the episode-start hook, and
evaluation that never touches training. A new agent must be listed in ``ENV_FOR`` to be tested here."""

from __future__ import annotations

import dataclasses
import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from anew.agents.core import Agent, TransitionBatch
from anew.envs import final_next_obs
from anew.runners import registry
from anew.runners.cli import main as cli
from anew.runners.evaluate import evaluate_agent
from anew.runners.loading import agent_spec, make_run_envs
from anew.runners.run_args import RunArgs
from anew.runners.run_dir import seed_everything

# The env each agent is checked on (small and fast); every registered agent must appear.
ENV_FOR = {
    "dqn": "CartPole-v1",
    "rainbow": "CartPole-v1",
    "ppo": "Pendulum-v1",
    "commnet": "anew/Levers-v0",
    "som": "anew/CoinGame-SOM-v0",
    "pdvf": "anew/Spaceship-v0",
    "directbackprop": "anew/LostSales-v0",
}
SMALL = {
    "buffer_size": 500,
    "learning_starts": 16,
    "batch_size": 8,
    "num_steps": 8,
    "num_minibatches": 2,
    "train_every": 4,
    "gradient_steps": 1,
    "hidden": (32,),
}
NUM_ENVS = 2


def small_config(name: str, env_id: str):
    _, config = registry.preset_config(name, "", env_id)
    fields = {f.name for f in dataclasses.fields(config)}
    return dataclasses.replace(
        config, **{k: v for k, v in SMALL.items() if k in fields and type(getattr(config, k)) is type(v)}
    )


def build(name: str, seed: int = 0):
    seed_everything(seed)  # as the runner does before it builds an agent (weights come from torch's RNG)
    env_id = ENV_FOR[name]
    run = RunArgs(env_id=env_id, seed=seed, num_envs=NUM_ENVS)
    envs = make_run_envs(run)
    agent = registry.build_agent(name, small_config(name, env_id), agent_spec(envs, NUM_ENVS, seed, "cpu"))
    return agent, envs


def drive(agent, envs, steps: int, seed: int = 0) -> list[np.ndarray]:
    """The runner's loop in miniature: episode starts, act, step, observe, update."""
    obs, info = envs.reset(seed=seed)
    team = "team_reward" in info or "active" in info
    starting, actions_seen = np.ones(NUM_ENVS, dtype=bool), []
    for _ in range(steps):
        agent.episode_start(starting, explore=True)
        actions = agent.act(obs, explore=True, info=info if team else None)
        actions_seen.append(np.array(actions, copy=True))
        next_obs, reward, terminated, truncated, next_info = envs.step(actions)
        done = terminated | truncated
        real_next = final_next_obs(next_obs, done, next_info)
        if team:
            extras = {k: v for k, v in info.items() if k != "active"} | {
                "team_reward": next_info["team_reward"]
            }
            batch = TransitionBatch(
                obs, actions, reward, terminated, truncated, real_next, info["active"], extras
            )
        else:
            batch = TransitionBatch(obs, actions, reward, terminated, truncated, real_next)
        agent.observe(batch)
        agent.update()
        obs, info, starting = next_obs, next_info, done
    return actions_seen


def state_bytes(agent) -> bytes:
    buffer = io.BytesIO()
    torch.save(agent.state_dict(), buffer)
    return buffer.getvalue()


def test_every_registered_agent_is_checked_here() -> None:
    assert set(registry.AGENTS) <= set(ENV_FOR), f"add {set(registry.AGENTS) - set(ENV_FOR)} to ENV_FOR"


LOOP_AGENTS = sorted(n for n, entry in registry.AGENTS.items() if entry.env_loop)
PIPELINES = sorted(n for n, entry in registry.AGENTS.items() if not entry.env_loop)


@pytest.fixture(params=LOOP_AGENTS)
def name(request) -> str:
    try:
        build(request.param)
    except ModuleNotFoundError as error:
        pytest.skip(f"{request.param} needs {error.name}")
    return request.param


@pytest.mark.parametrize("pipeline", PIPELINES)
def test_pipelines_build_from_the_spec_and_round_trip_their_state(pipeline: str) -> None:
    """Agents whose phases do all the work act only after them (their runs are tested end to end in their own
    test files); before: built from the spec, state round trip, evaluation entries declared."""
    try:
        agent, _ = build(pipeline)
    except ModuleNotFoundError as error:
        pytest.skip(f"{pipeline} needs {error.name}")
    assert isinstance(agent, Agent) and agent.evaluation_envs()
    twin, _ = build(pipeline, seed=99)
    twin.load_state_dict(torch.load(io.BytesIO(state_bytes(agent)), weights_only=True))
    assert state_bytes(twin) == state_bytes(agent)


def test_builds_from_the_spec_and_acts_with_the_right_shapes(name: str) -> None:
    agent, envs = build(name)
    assert isinstance(agent, Agent)
    obs, info = envs.reset(seed=0)
    team = "active" in info
    agent.episode_start(np.ones(NUM_ENVS, dtype=bool), explore=True)
    actions = np.asarray(agent.act(obs, explore=True, info=info if team else None))
    space = envs.single_action_space
    expected = (NUM_ENVS, len(envs.agents)) if team else (NUM_ENVS,)
    assert actions.shape == expected + tuple(space.shape)
    assert all(space.contains(np.asarray(a, dtype=space.dtype)) for a in actions.reshape(-1, *space.shape))


def test_same_seed_same_actions_other_seed_other_actions(name: str) -> None:
    runs = [drive(*build(name, seed), 40) for seed in (3, 3, 4)]
    for first, second in zip(runs[0], runs[1]):
        np.testing.assert_array_equal(first, second)
    assert any(not np.array_equal(a, b) for a, b in zip(runs[0], runs[2]))


def test_state_dict_round_trip_continues_identically(name: str) -> None:
    agent, envs = build(name, seed=5)
    drive(agent, envs, 40)
    saved = torch.load(io.BytesIO(state_bytes(agent)), weights_only=True)
    twin, _ = build(name, seed=99)
    twin.load_state_dict(saved)
    assert state_bytes(twin) == state_bytes(agent)
    obs, info = envs.reset(seed=1)
    team = "active" in info
    for a in (agent, twin):
        a.episode_start(np.ones(NUM_ENVS, dtype=bool), explore=True)
    np.testing.assert_array_equal(
        agent.act(obs, explore=True, info=info if team else None),
        twin.act(obs, explore=True, info=info if team else None),
    )


def test_evaluation_does_not_touch_training_state(name: str) -> None:
    agent, envs = build(name, seed=7)
    twin, twin_envs = build(name, seed=7)
    drive(agent, envs, 30)
    drive(twin, twin_envs, 30)
    torch_state = torch.get_rng_state()
    evaluate_agent(agent, ENV_FOR[name], 3, seed=11, env_kwargs={})
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert state_bytes(agent) == state_bytes(twin)
    for a, b in zip(drive(agent, envs, 20, seed=2), drive(twin, twin_envs, 20, seed=2)):
        np.testing.assert_array_equal(a, b)


class EpisodeSpy:
    """Records episode-start calls, then defers to a real agent."""

    def __init__(self, agent):
        self.agent, self.calls = agent, []

    def episode_start(self, mask: np.ndarray, explore: bool = True) -> None:
        self.calls.append((np.array(mask, copy=True), explore))
        self.agent.episode_start(mask, explore)

    def act(self, *args, **kwargs):
        return self.agent.act(*args, **kwargs)


def test_evaluation_calls_the_episode_start_hook_at_every_episode_start() -> None:
    agent, _ = build("dqn")
    spy = EpisodeSpy(agent)
    result = evaluate_agent(spy, "CartPole-v1", 5, seed=0, max_parallel=2)
    starts = sum(int(mask.sum()) for mask, _ in spy.calls)
    assert starts >= len(result.returns) and all(explore is False for _, explore in spy.calls)


def test_training_calls_the_episode_start_hook_where_episodes_restart(tmp_path: Path) -> None:
    from anew.runners.train import Trainer

    run = RunArgs(
        env_id="CartPole-v1",
        seed=0,
        num_envs=2,
        total_steps=300,
        eval_every=0,
        eval_episodes=1,
        checkpoint_every=0,
        log_every=100,
    )
    config = small_config("dqn", "CartPole-v1")
    agent, _ = build("dqn")
    calls: list[tuple[np.ndarray, bool]] = []
    original = agent.episode_start
    agent.episode_start = lambda mask, explore=True: (
        calls.append((mask.copy(), explore)),
        original(mask, explore),
    )
    Trainer("dqn", run, config, tmp_path / "run", agent=agent).train()
    training = [mask for mask, explore in calls if explore]
    assert training[0].all()  # every env starts an episode at the first step
    episodes = (tmp_path / "run" / "metrics.jsonl").read_text().count('"charts/episodic_return"')
    # one start per env at the beginning, then one per finished episode except those ending at the last step
    assert episodes > 2 and 2 + episodes - 2 <= sum(int(mask.sum()) for mask in training) <= 2 + episodes


def test_eval_every_leaves_training_bit_identical(tmp_path: Path) -> None:
    """Two runs that differ only in --eval-every: identical training metrics and final weights."""
    common = [
        "train",
        "dqn",
        "--seed",
        "3",
        "--total-steps",
        "1200",
        "--learning-starts",
        "200",
        "--buffer-size",
        "2000",
        "--eval-episodes",
        "2",
        "--checkpoint-every",
        "1200",
        "--log-every",
        "100",
        "--hidden",
        "32",
    ]
    for every, folder in (("300", "often"), ("0", "never")):
        assert cli([*common, "--eval-every", every, "--run-dir", str(tmp_path / folder)]) == 0
    final = "checkpoints/step_000000001200/agent.pt"
    a, b = (torch.load(tmp_path / d / final, weights_only=True)["agent"] for d in ("often", "never"))
    for name, tensor in a["online"].items():
        assert torch.equal(tensor, b["online"][name]), name
    assert a["rng"] == b["rng"] and a["updates"] == b["updates"]

    def training_lines(folder: str) -> list[dict]:
        lines = [json.loads(line) for line in (tmp_path / folder / "metrics.jsonl").read_text().splitlines()]
        return [
            {k: v for k, v in line.items() if not k.startswith("eval/")}
            for line in lines
            if any(not k.startswith("eval/") and k != "step" for k in line)
        ]

    assert training_lines("often") == training_lines("never")
    evaluations = [
        json.loads((tmp_path / d / "eval.json").read_text())["evaluations"] for d in ("often", "never")
    ]
    assert [e["step"] for e in evaluations[0]] == [300, 600, 900, 1200] and evaluations[1][0]["step"] == 1200
    assert (
        evaluations[0][-1]["returns"] == evaluations[1][-1]["returns"]
    )  # the same final agent, same episodes
