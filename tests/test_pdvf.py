"""PD-VF's pipeline on the run contract: the test-time procedure, exact state round trips inside phases, a
tiny end-to-end run through the CLI (one eval.json entry per test env), the baselines, `anew evaluate
--env-index`, and a run killed with SIGKILL in phase (d) that resumes to the same eval.json."""

from __future__ import annotations

import dataclasses
import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers_kill import anew, resume_and_finish, sigkill_when

from anew.agents.core import AgentSpec
from anew.agents.pdvf.adapt import Adapter, PDVFModels, SignTable
from anew.agents.pdvf.agent import PRESETS, PDVFAgent
from anew.agents.pdvf.policies import LearningSignal
from anew.agents.pdvf.rollouts import PolicyLibrary, episode_seed, play_in
from anew.agents.pdvf.training import mixed_rows
from anew.envs import make_vector_env
from anew.errors import AnewError
from anew.runners.cli import main as anew_main

torch.set_num_threads(1)
ENV = "anew/Spaceship-v0"
TINY = ["--env-id", ENV, "--preset", "spaceship-ci", "--eval-episodes", "3", "--log-every", "1"]


def make_envs(num_envs: int, seed: int, **options):
    return make_vector_env(ENV, num_envs, seed, env_kwargs=options)


def tiny_agent(seed: int = 3, **changes) -> PDVFAgent:
    envs = make_envs(1, 0)
    spec = AgentSpec(envs.single_observation_space, envs.single_action_space, 1, seed)
    return PDVFAgent(dataclasses.replace(PRESETS["spaceship-ci"], **changes), spec)


def round_trip(state: dict) -> dict:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)  # what checkpoints allow


def work(agent: PDVFAgent, phase: str, units: range) -> list[dict[str, float]]:
    (found,) = [p for p in agent.phases(make_envs) if p.name == phase]
    return [found.work(unit) for unit in units]


class _Scripted:
    """A deterministic policy: always the same action."""

    def __init__(self, action: tuple[float, float]):
        self.action = np.asarray(action, np.float32)

    def act(self, obs: np.ndarray, explore: bool = False) -> np.ndarray:
        return np.tile(self.action, (len(obs), 1))


def test_learning_signal_maps_the_terminal_reward_to_a_linear_distance_and_ends_at_the_time_limit():
    distance = np.array([0.0, 1.0, 4.0])
    reward = np.concatenate(
        [np.exp(-3.0 * distance), [0.0]]
    )  # three final steps and a step inside an episode
    assert np.allclose(LearningSignal(15.0).reward(reward), [1.0, 0.8, 0.2, 0.0])
    assert np.array_equal(LearningSignal().reward(reward), reward)  # off: the env's reward
    terminated, truncated = np.array([True, False, False]), np.array([False, True, False])
    ends = LearningSignal(timeout_terminal=True).ends(terminated, truncated)
    assert ends[0].tolist() == [True, True, False] and not ends[1].any()
    assert LearningSignal().ends(terminated, truncated) == (terminated, truncated)


def test_play_episodes_records_exactly_one_episode_per_slot():
    up = _Scripted((0.0, 3.0))
    batch = play_in(make_envs, 3, 5, PolicyLibrary([up]).fixed(0), 50, env_index=7)
    assert np.allclose(batch.obs[:, 0], [2.5, 0.2])
    for i, length in enumerate(batch.lengths):
        assert 0 < length < 50 and batch.obs[i, length, 1] > 5.0  # out through the door
        assert np.all(batch.rewards[i, : length - 1] == 0.0) and batch.rewards[i, length - 1] > 0
        assert np.all(batch.actions[i, length:] == 0.0) and np.all(batch.actions[i, :length, 1] == 3.0)
        assert np.all(np.diff(batch.obs[i, : length + 1, 1]) > 0) and np.all(
            batch.obs[i, length + 1 :] == 0.0
        )
    returns = batch.returns(0.99)
    assert np.allclose(returns, batch.rewards.sum(1))  # one reward per episode: undiscounted
    assert np.allclose(
        returns, np.exp(-3 * np.linalg.norm(batch.obs[np.arange(3), batch.lengths] - [2.5, 5.0], axis=1))
    )


def test_mixed_rows_take_a_quarter_old_and_three_quarters_new():
    old = {
        "initial": torch.zeros(50, 2),
        "dynamics": torch.zeros(50, 3),
        "policy": torch.zeros(50, 4),
        "returns": torch.zeros(50),
    }
    new = {k: v[:20] + 1 for k, v in old.items()}
    batch = mixed_rows(old, new, 128, np.random.default_rng(0))
    assert len(batch["returns"]) == 128 and int(batch["returns"].sum()) == 96
    assert batch["returns"][:32].sum() not in (0, 32)  # shuffled together


def test_adapter_probes_then_decodes_with_the_forced_sign():
    models = PDVFModels(2, 2, 8, 8, 16, 0.0, 32, True, torch.Generator().manual_seed(0))
    library = PolicyLibrary([_Scripted((0.0, 1.0)), _Scripted((1.0, -2.0))])
    low, high = -np.full(2, 3, np.float32), np.full(2, 3, np.float32)
    adapter = Adapter(models, library, 1, low, high, SignTable())
    adapter.start(np.ones(2, dtype=bool), probes=np.array([1, 1]), signs=np.array([1, -1]))
    obs0 = np.array([[2.5, 0.2], [2.5, 0.2]], np.float32)
    first = adapter.act(obs0, np.random.default_rng(0))
    assert np.allclose(first, [[1.0, -2.0], [1.0, -2.0]])  # the probe plays step 0
    obs1 = np.array([[2.6, 0.1], [2.6, 0.1]], np.float32)
    second = adapter.act(obs1, np.random.default_rng(0))
    u = models.best_embedding(torch.as_tensor(obs0), adapter.dynamics)
    assert torch.allclose(adapter.embedding, u * torch.tensor([[1.0], [-1.0]]))
    assert torch.allclose(adapter.embedding[0], -adapter.embedding[1])
    expected = models.policy_decoder(adapter.embedding, torch.as_tensor(obs1)).clamp(-3, 3).detach().numpy()
    assert np.allclose(second, expected, atol=1e-6)
    assert not np.allclose(second[0], second[1])  # the two signs decode to different policies


def test_sign_table_takes_the_sign_of_the_nearest_centroid_of_the_same_probe():
    centroids = torch.tensor([[[1.0, 0.0], [0.0, 1.0]], [[-1.0, 0.0], [0.0, -1.0]]])  # [env, probe, d]
    table = SignTable(centroids, torch.tensor([[1, -1], [-1, 1]]))
    z = torch.tensor([[0.9, 0.1], [-0.8, 0.0], [0.1, 0.9], [0.1, 0.9]])
    assert table(np.array([0, 0, 1, 0]), z).tolist() == [1, -1, -1, 1]
    assert SignTable()(np.array([0, 1]), z[:2]).tolist() == [1, 1]


def test_state_round_trip_inside_the_ppo_phase_and_the_dynamics_phase():
    """Stopped mid-policy (and mid-embedding), saved, loaded into a fresh agent: the next units are identical."""
    agent = tiny_agent()
    work(agent, "policies", range(3))
    done = {"policies": 3}
    for phase in ("policies", "dynamics"):
        if phase == "dynamics":
            work(agent, "policies", range(3, agent.training.units))
            work(agent, "episodes", range(len(agent.config.train_envs)))
            work(agent, "dynamics", range(1))
            done = {"dynamics": 1}
        clone = tiny_agent()
        clone.load_state_dict(round_trip(agent.state_dict()))
        following = range(done[phase], done[phase] + 2)
        assert work(agent, phase, following) == work(clone, phase, following)
        for name, tensor in agent.models.state_dict().items():
            assert torch.equal(tensor, clone.models.state_dict()[name]), name


def test_a_policy_below_the_bar_trains_again_from_a_new_seed():
    for retry_below, tries_run in ((-1.0, 1), (2.0, 2)):  # returns lie in [0, 1]
        agent = tiny_agent(train_envs=(0,), ppo_tries=2, ppo_retry_below=retry_below)
        metrics = work(agent, "policies", range(agent.training.units))
        finals = [m["charts/final_return"] for m in metrics if "charts/final_return" in m]
        assert len(finals) == tries_run and len(agent.training.finished) == 1
    weights = [
        agent.training.new_agent(0, attempt).network.state_dict()["actor.0.weight"] for attempt in (0, 1)
    ]
    assert not torch.equal(*weights)  # each try starts from its own seed


def test_a_policy_is_scored_by_deterministic_episodes_and_only_good_ones_probe():
    agent = tiny_agent(train_envs=(0, 5), ppo_tries=1, ppo_score_episodes=4)
    work(agent, "policies", range(agent.training.units))
    for job, (policy, score) in enumerate(zip(agent.training.policies(), agent.training.scores, strict=True)):
        seed = episode_seed(agent.spec.seed, 103, job, 0)
        played = play_in(make_envs, 4, seed, lambda obs, p=policy: p.act(obs, explore=False),
                         agent.config.max_episode_steps, env_index=(0, 5)[job])  # fmt: skip
        assert score == pytest.approx(float(played.rewards.sum(axis=1).mean()))
    agent.training.scores = [0.9, 0.1]
    assert agent.training.probe_indices() == [0] and agent.library().probes.tolist() == [0]
    agent.training.scores = [0.1, 0.2]  # none reached the bar: every policy probes rather than none
    assert agent.training.probe_indices() == [0, 1]
    restored = tiny_agent(train_envs=(0, 5), ppo_tries=1, ppo_score_episodes=4)
    restored.load_state_dict(round_trip(agent.state_dict()))
    assert restored.training.scores == [0.1, 0.2]


def test_the_adapter_draws_each_probe_equally_often_and_only_probes():
    models = PDVFModels(2, 2, 8, 8, 16, 0.0, 32, True, torch.Generator().manual_seed(0))
    scripted = [_Scripted((0.0, 1.0)), _Scripted((1.0, -2.0)), _Scripted((0.5, 0.5))]
    low, high = -np.full(2, 3, np.float32), np.full(2, 3, np.float32)
    adapter = Adapter(models, PolicyLibrary(scripted, probes=[0, 2]), 1, low, high, SignTable())
    rng, drawn = np.random.default_rng(0), []
    for _ in range(3):  # three batches of 4 episodes: 12 draws, 6 per probe
        adapter.start(np.ones(4, dtype=bool))
        adapter.act(np.full((4, 2), 2.5, np.float32), rng)
        drawn += adapter.probes.tolist()
    assert sorted(drawn) == [0] * 6 + [2] * 6 and drawn[:6] != drawn[6:]


def test_phase_two_fits_both_sign_rows_to_the_better_signs_return():
    for best_sign in (True, False):
        agent = tiny_agent(dagger_best_sign=best_sign, dagger_stages=1)
        for phase in agent.phases(make_envs):
            if phase.name in ("signs",):
                break
            for unit in range(phase.units):
                phase.work(unit)
        pairs = agent.pipeline.stage_rows[0]["returns"].view(-1, 2)
        assert torch.equal(pairs[:, 0], pairs[:, 1]) == best_sign


def test_config_checks_name_the_flag():
    with pytest.raises(AnewError, match="--target-env"):
        tiny_agent(method="ppoenv", target_env=3)
    with pytest.raises(AnewError, match="--heldout-every"):
        tiny_agent(heldout_every=1)


@pytest.fixture(scope="module")
def ci_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("pdvf") / "run"
    assert anew_main(["train", "pdvf", *TINY, "--seed", "1", "--run-dir", str(run_dir)]) == 0
    return run_dir


def test_cli_run_evaluates_every_test_env(ci_run: Path):
    document = json.loads((ci_run / "eval.json").read_text())
    assert document["agent"] == "pdvf" and document["env_id"] == ENV
    entries = document["evaluations"]
    assert [e["extra"]["env_index"] for e in entries] == [15, 16, 17, 18, 19]
    for entry in entries:
        assert len(entry["returns"]) == 3 and all(0.0 <= r <= 1.0 for r in entry["returns"])
    metrics = [json.loads(line) for line in (ci_run / "metrics.jsonl").read_text().splitlines()]
    phases = {m.get("phase") for m in metrics}
    assert {"policies", "episodes", "dynamics", "policy_embedding", "value", "dagger", "signs"} <= phases
    assert any("dynamics/dynamics_loss" in m for m in metrics)


def test_evaluate_one_test_env(ci_run: Path, tmp_path: Path):
    out = tmp_path / "eval17.json"
    assert (
        anew_main(["evaluate", str(ci_run), "--env-index", "17", "--episodes", "2", "--json-out", str(out)])
        == 0
    )
    document = json.loads(out.read_text())
    assert document["env_kwargs"]["env_index"] == 17 and len(document["returns"]) == 2


@pytest.mark.parametrize("preset, indices", [("ppoall-ci", [15, 16, 17, 18, 19]), ("ppoenv-ci", [17])])
def test_baselines_run_through_the_same_command(tmp_path: Path, preset: str, indices: list[int]):
    args = [
        *TINY[:2],
        "--preset",
        preset,
        *TINY[4:],
        "--seed",
        "2",
        "--run-dir",
        str(tmp_path / "run"),
        "--target-env",
        "17",
    ]
    assert anew_main(["train", "pdvf", *args]) == 0
    document = json.loads((tmp_path / "run" / "eval.json").read_text())
    assert [e["extra"]["env_index"] for e in document["evaluations"]] == indices
    assert document["config"]["agent_config"]["method"] == preset.split("-")[0]


def test_sigkill_in_the_dagger_phase_then_resume_equals_uninterrupted(tmp_path: Path):
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    args = [*TINY, "--seed", "4", "--checkpoint-every", "4", "--dagger-epochs", "60"]
    reference = anew("train", "pdvf", "--run-dir", str(whole), *args)
    victim = anew("train", "pdvf", "--run-dir", str(killed), *args)
    dagger_index = 5  # policies, episodes, dynamics, policy_embedding, value, dagger
    sigkill_when(victim, lambda: list((killed / "checkpoints").glob(f"step_*.{dagger_index:02d}.*")))
    assert not (killed / "eval.json").exists()  # it really stopped inside the pipeline
    resume_and_finish(killed, reference)
    evaluations = [json.loads((d / "eval.json").read_text())["evaluations"] for d in (whole, killed)]
    assert evaluations[0] == evaluations[1]
    final = "checkpoints/step_000000000000/agent.pt"
    a, b = (torch.load(d / final, weights_only=True)["agent"]["pipeline"]["models"] for d in (whole, killed))
    assert all(torch.equal(a[name], b[name]) for name in a)
