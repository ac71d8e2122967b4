"""QDagger: the loss pieces, the weaning schedule, the tied learning rate and the switch between phases."""

from __future__ import annotations

import copy
import dataclasses
import io
import math

import gymnasium as gym
import numpy as np
import pytest
import torch
from helpers_agents import BOX, small_dqn, step_cartpole

from anew.agents.core import AgentSpec, TransitionBatch
from anew.agents.replay import ReplaySample
from anew.errors import AnewError
from anew.reincarnation import (
    ReincarnatingStudent,
    ReincarnationConfig,
    Teacher,
    teacher_normalized_score,
    tied_learning_rate,
    weaned_weight,
)
from anew.reincarnation.baselines import METHODS
from anew.reincarnation.qdagger import concat_samples, distill_term_loss

torch.set_num_threads(1)
CONFIG = ReincarnationConfig(
    offline_steps=10,
    offline_target_update_every=3,
    max_lr=1e-3,
    min_lr=1e-4,
    wean_cutoff_steps=1_000,
    online_epsilon_decay_steps=100,
)


class FixedSource:
    """Teacher data that always returns the same batch."""

    def __init__(self, batch_size: int = 8, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.rng = rng  # the TransitionSource protocol: the generator batches are drawn with
        self.batch = ReplaySample(
            obs=rng.normal(size=(batch_size, 4)).astype(np.float32),
            action=rng.integers(0, 2, batch_size),
            reward=rng.normal(size=batch_size).astype(np.float32),
            discount=np.full(batch_size, 0.99, np.float32),
            next_obs=rng.normal(size=(batch_size, 4)).astype(np.float32),
            indices=np.arange(batch_size),
            weights=np.ones(batch_size, np.float32),
        )

    def sample(self, batch_size: int) -> ReplaySample:
        return ReplaySample(**{name: value[:batch_size] for name, value in vars(self.batch).items()})


def make_student(method: str = "qdagger", config: ReincarnationConfig = CONFIG, seed: int = 0):
    agent = small_dqn(seed, max_grad_norm=0.0)
    teacher = Teacher.from_agent(small_dqn(seed + 100))
    return ReincarnatingStudent(agent, teacher, config, METHODS[method], FixedSource()), agent, teacher


# ---------------------------------------------------------------------- the schedule
def test_teacher_normalized_score_on_hand_numbers():
    assert teacher_normalized_score(60.0, 110.0, 10.0) == pytest.approx(0.5)
    assert teacher_normalized_score(110.0, 110.0, 10.0) == 1.0  # exactly, so weaning can reach zero
    assert teacher_normalized_score(-21.0, -21.0, -21.0) == 0.0  # a teacher no better than random


def test_weaning_follows_the_score_then_stays_at_zero():
    w = 1.0
    w = weaned_weight(w, 0.3, online_steps=100, cutoff_steps=1_000)
    assert w == pytest.approx(0.7)
    w = weaned_weight(w, 0.2, online_steps=200, cutoff_steps=1_000)  # a worse score raises w again
    assert w == pytest.approx(0.8)
    w = weaned_weight(w, 1.3, online_steps=300, cutoff_steps=1_000)
    assert w == 0.0
    assert weaned_weight(w, 0.1, online_steps=400, cutoff_steps=1_000) == 0.0  # zero for good
    assert weaned_weight(0.9, 0.1, online_steps=1_001, cutoff_steps=1_000) == 0.0  # past the cut-off


def test_learning_rate_is_tied_to_the_weight():
    assert tied_learning_rate(1.0, 1e-4, 1e-5) == pytest.approx(1e-4)
    assert tied_learning_rate(0.0, 1e-4, 1e-5) == pytest.approx(1e-5)
    assert tied_learning_rate(0.5, 1e-4, 1e-5) == pytest.approx(5.5e-5)


def test_distillation_term_on_hand_numbers():
    # tau = 0.1: teacher Q (0.1 ln 3, 0) -> p_T = (3/4, 1/4); student Q equal -> p_S = (1/2, 1/2).
    teacher_q = torch.tensor([[0.1 * math.log(3.0), 0.0]])
    student_q = torch.zeros(1, 2)
    expected = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)
    value = distill_term_loss(student_q, torch.tensor([0]), teacher_q, ReincarnationConfig())
    assert value.item() == pytest.approx(expected, rel=1e-5)


# ---------------------------------------------------------------------- the loss in a gradient step
def test_gradient_step_is_td_plus_lambda_kl():
    student, agent, teacher = make_student()
    agent.optimizer = torch.optim.SGD(agent.online.parameters(), lr=1.0)  # new = old - gradient
    sample = student.teacher_data.sample(8)
    reference = copy.deepcopy(agent.online)
    obs, next_obs = torch.as_tensor(sample.obs), torch.as_tensor(sample.next_obs)
    q = reference(obs)
    with torch.no_grad():
        td_target = torch.as_tensor(sample.reward) + 0.99 * agent.target(next_obs).max(1).values
    td = torch.nn.functional.huber_loss(
        q.gather(1, torch.as_tensor(sample.action)[:, None]).squeeze(1), td_target
    )
    teacher_p = torch.softmax(teacher.q_values(sample.obs) / 0.1, 1)
    kl = (teacher_p * (teacher_p.log() - torch.log_softmax(q / 0.1, 1))).sum(1).mean()
    (td + 3.0 * kl).backward()
    metrics = student.offline_update()
    assert metrics["losses/td_loss"] == pytest.approx(td.item(), rel=1e-5)
    assert metrics["losses/distill_loss"] == pytest.approx(kl.item(), rel=1e-5)
    assert metrics["charts/distill_coeff"] == 3.0
    for (name, new), old in zip(agent.online.named_parameters(), reference.parameters()):
        torch.testing.assert_close(new, old - old.grad, rtol=1e-5, atol=1e-6, msg=name)


def test_no_teacher_term_at_zero_coefficient():
    student, agent, teacher = make_student()
    student.start_online()
    student.weight = 0.0
    calls = []
    teacher.q_values = lambda obs: calls.append(obs) or torch.zeros(len(obs), 2)
    metrics = agent.learn_on(FixedSource().sample(8), student.teacher_loss, own_replay=False)
    assert "losses/distill_loss" not in metrics and not calls and metrics["charts/distill_coeff"] == 0.0


def small_rainbow(**overrides):
    rainbow = pytest.importorskip("anew.agents.rainbow")
    config = dataclasses.replace(
        rainbow.PRESETS["classic-control"],
        buffer_size=500,
        hidden=(16,),
        learning_starts=20,
        train_every=10,
        gradient_steps=2,
        batch_size=8,
        **overrides,
    )
    return rainbow.RainbowAgent(config, AgentSpec(BOX, gym.spaces.Discrete(2), num_envs=1, seed=0))


def test_c51_td_loss_on_a_one_hot_target():
    """Discount 0 and a reward on an atom project the target onto that atom: CE = -log p(atom)."""
    agent = small_rainbow(noisy=False, dueling=False, v_min=-2.0, v_max=2.0, num_atoms=5, prioritized=False)
    sample = FixedSource(3).sample(3)
    sample.reward = np.array([1.0, -2.0, 0.0], np.float32)  # atoms 3, 0, 2
    sample.discount = np.zeros(3, np.float32)
    loss, q = agent.loss(sample)
    log_p = torch.log_softmax(agent.online.logits(torch.as_tensor(sample.obs)), -1)
    expected = -log_p[torch.arange(3), torch.as_tensor(sample.action).long(), torch.tensor([3, 0, 2])]
    torch.testing.assert_close(loss, expected)
    torch.testing.assert_close(q, (log_p.exp() * agent.online.support).sum(-1))
    student = ReincarnatingStudent(
        agent, Teacher.from_agent(small_dqn()), ReincarnationConfig(), METHODS["qdagger"], FixedSource()
    )
    assert student.config.distill_coef == 1.0 and student.config.wean_cutoff_steps == 2_500_000


def test_rainbow_student_distills_expected_q_with_importance_weights():
    agent = small_rainbow()  # noisy, dueling, prioritized: the full classic-control Rainbow
    teacher = Teacher.from_agent(small_dqn())
    student = ReincarnatingStudent(agent, teacher, CONFIG, METHODS["kickstarting"])
    assert student.epsilon == 0.0  # noisy nets explore by themselves
    metrics = step_cartpole(student, 40)
    assert (
        agent.updates == 6 and metrics["charts/distill_coeff"] == 1.0 and metrics["losses/distill_loss"] > 0
    )
    priorities = agent.replay.tree.priorities
    assert len(np.unique(priorities[priorities > 0])) > 2  # priorities came from the losses


def test_dqn_student_defaults_follow_the_paper():
    student, _, _ = make_student(config=ReincarnationConfig())
    assert student.config.distill_coef == 3.0 and student.config.temperature == 0.1
    assert student.config.wean_cutoff_steps == 1_500_000


# ---------------------------------------------------------------------- phases
def test_offline_phase_syncs_target_on_its_own_period():
    student, agent, _ = make_student()
    assert student.phase == "offline" and student.learning_rate == pytest.approx(1e-3)
    with pytest.raises(RuntimeError):
        student.update()
    for _ in range(2):
        student.offline_update()
    differs = any((a != b).any() for a, b in zip(agent.online.parameters(), agent.target.parameters()))
    assert differs
    student.offline_update()  # the 3rd gradient step copies online -> target
    assert all(torch.equal(a, b) for a, b in zip(agent.online.parameters(), agent.target.parameters()))


def test_switch_keeps_adam_for_qdagger_and_resets_it_for_pretraining():
    student, agent, _ = make_student("qdagger")
    for _ in range(4):
        student.offline_update()
    optimizer = agent.optimizer
    student.start_online()
    assert student.phase == "online" and agent.optimizer is optimizer and len(optimizer.state) > 0
    assert all(torch.equal(a, b) for a, b in zip(agent.online.parameters(), agent.target.parameters()))
    assert student.learning_rate == pytest.approx(1e-3)  # w = 1: max_lr

    pretrain, agent, _ = make_student("pretrain")
    for _ in range(4):
        pretrain.offline_update()
    pretrain.start_online()
    assert len(agent.optimizer.state) == 0 and pretrain.learning_rate == pytest.approx(
        1e-4
    )  # fresh Adam, min_lr
    assert pretrain.coefficient == 0.0  # plain TD online


def test_weaning_after_evaluations_moves_lambda_and_lr():
    student, _, _ = make_student()
    student.record_score(0.5, online_steps=0)  # offline evaluations do not wean
    assert student.weight == 1.0
    student.start_online()
    student.record_score(0.25, online_steps=100)
    assert student.coefficient == pytest.approx(3.0 * 0.75)
    assert student.learning_rate == pytest.approx(0.75 * 1e-3 + 0.25 * 1e-4)
    student.record_score(1.0, online_steps=200)
    assert student.coefficient == 0.0 and student.learning_rate == pytest.approx(1e-4)
    student.record_score(0.0, online_steps=300)
    assert student.coefficient == 0.0


def test_exploration_counts_offline_steps_and_has_no_warmup():
    qdagger, agent, _ = make_student()
    for _ in range(10):
        qdagger.offline_update()
    assert qdagger.epsilon == pytest.approx(1.0 + (agent.config.epsilon_end - 1.0) * 10 / 100)
    kick, agent, _ = make_student("kickstarting")
    assert kick.phase == "online" and kick.epsilon == pytest.approx(1.0)
    agent.steps = 100
    assert kick.epsilon == pytest.approx(agent.config.epsilon_end)


def test_online_updates_follow_the_agent_schedule_and_store_own_data():
    student, agent, _ = make_student("kickstarting")
    metrics = step_cartpole(student, 60)
    # learning starts at 20, then 2 gradient steps every 10 agent steps: bursts at 20..60 -> 5 x 2.
    assert agent.updates == 10 and agent.steps == 60
    assert "losses/distill_loss" in metrics and metrics["charts/distill_coeff"] == 3.0


def test_rehearsal_mixes_teacher_transitions():
    student, agent, _ = make_student("rehearsal", dataclasses.replace(CONFIG, rehearsal_ratio=0.5))
    for t in range(40):
        obs = np.full((1, 4), 0.5, np.float32)
        agent.observe(
            TransitionBatch(
                obs, np.array([0]), np.array([1.0]), np.array([False]), np.array([t % 10 == 9]), obs
            )
        )
    student.start_online()
    batch = student.online_batch()
    assert len(batch.action) == agent.config.batch_size
    from_teacher = batch.indices < 0
    assert 0 < from_teacher.sum() < len(from_teacher)
    np.testing.assert_array_equal(batch.obs[~from_teacher], 0.5)
    merged = concat_samples(FixedSource(3).sample(3), FixedSource(2).sample(2))
    assert merged.obs.shape == (5, 4) and list(merged.indices) == [0, 1, 2, -1, -1]


def test_state_dict_loads_as_the_plain_agent_with_weights_only():
    student, agent, _ = make_student()
    student.offline_update()
    student.start_online()
    student.record_score(0.4, online_steps=10)
    buffer = io.BytesIO()
    torch.save(student.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    plain = small_dqn(5)
    plain.load_state_dict(state)
    obs = torch.randn(4, 4)
    torch.testing.assert_close(plain.online(obs), agent.online(obs))
    restored, _, _ = make_student(seed=9)
    restored.load_state_dict(state)
    assert restored.phase == "online" and restored.weight == pytest.approx(0.6)
    assert restored.learning_rate == pytest.approx(student.learning_rate)


def test_student_needs_a_value_based_agent_and_teacher_data():
    with pytest.raises(AnewError, match="value-based"):
        ReincarnatingStudent(object(), None, CONFIG)
    with pytest.raises(AnewError, match="teacher data"):
        ReincarnatingStudent(small_dqn(), Teacher.from_agent(small_dqn()), CONFIG, METHODS["qdagger"], None)
    with pytest.raises(AnewError, match="needs a teacher"):
        ReincarnatingStudent(small_dqn(), None, CONFIG, METHODS["kickstarting"])
