"""The baselines: their loss terms on hand-made numbers, JSRL's roll-in, fine-tuning, and a few steps of each."""

from __future__ import annotations

import dataclasses
import math
from functools import partial

import gymnasium as gym
import numpy as np
import pytest
import torch
from helpers_agents import FixedQ, small_dqn, step_cartpole

from anew.agents.core import AgentSpec, TransitionBatch
from anew.errors import AnewError
from anew.reincarnation import METHODS, ReincarnationConfig, Teacher, build_student
from anew.reincarnation.baselines import (
    JSRLStudent,
    cql_loss,
    large_margin_loss,
    method,
    reload_teacher_weights,
)
from anew.reincarnation.qdagger import ReincarnatingStudent
from anew.reincarnation.teachers import collect_teacher_replay, replay_like

torch.set_num_threads(1)
BOX = gym.spaces.Box(-np.inf, np.inf, (4,), np.float32)
small_agent = partial(small_dqn, obs_space=BOX)
CONFIG = ReincarnationConfig(
    offline_steps=5,
    offline_target_update_every=2,
    max_lr=1e-3,
    min_lr=1e-4,
    wean_cutoff_steps=1_000,
    online_epsilon_decay_steps=50,
    jsrl_max_roll_in=10,
)


# ---------------------------------------------------------------------- loss terms
def test_cql_on_hand_numbers():
    q = torch.tensor([[1.0, 2.0]])
    # tau = 1: logsumexp(1, 2) - 1 = log(1 + e)
    assert cql_loss(q, torch.tensor([0]), 1.0).item() == pytest.approx(math.log(1 + math.e), rel=1e-6)
    # tau = 0.1 on the best action: logsumexp(10, 20) - 20 = log(1 + e^-10)
    assert cql_loss(q.double(), torch.tensor([1]), 0.1).item() == pytest.approx(
        math.log1p(math.exp(-10)), rel=1e-6
    )


def test_large_margin_on_hand_numbers():
    q = torch.tensor([[1.0, 3.0, 2.0], [5.0, 1.0, 2.0]])
    expert = torch.tensor([0, 0])
    # DQfD: max_a [Q + l] - Q(a_E) = max(1, 4, 3) - 1 = 3; and max(5, 2, 3) - 5 = 0 (the expert leads by > l).
    torch.testing.assert_close(large_margin_loss(q, expert, 1.0, max_form=True), torch.tensor([3.0, 0.0]))
    # reincarnating_rl's default: hinges (0, 3, 2) averaged = 5/3; and (0, 0, 0).
    torch.testing.assert_close(large_margin_loss(q, expert, 1.0), torch.tensor([5.0 / 3.0, 0.0]))


def test_dqfd_uses_the_teachers_greedy_actions():
    term = METHODS["dqfd"].online
    q = torch.tensor([[1.0, 3.0, 2.0]])
    teacher_q = torch.tensor([[0.0, 0.0, 9.0]])  # teacher picks action 2
    value = term.loss(q, torch.tensor([0]), teacher_q, ReincarnationConfig())
    torch.testing.assert_close(value, large_margin_loss(q, torch.tensor([2]), 1.0))


def test_methods_are_variations_of_qdagger():
    assert (
        METHODS["kickstarting"].offline is None
        and METHODS["kickstarting"].online is METHODS["qdagger"].online
    )
    assert METHODS["pretrain"].offline.name == "cql" and METHODS["pretrain"].online is None
    assert not METHODS["pretrain"].keep_optimizer and METHODS["pretrain"].online_lr == "min"
    assert METHODS["rehearsal"].rehearsal and METHODS["rehearsal"].offline is METHODS["pretrain"].offline
    assert METHODS["dqfd"].offline is METHODS["dqfd"].online and METHODS["dqfd"].online_lr == "max"
    with pytest.raises(AnewError, match="unknown reincarnation method"):
        method("dagger")


# ---------------------------------------------------------------------- JSRL and fine-tuning
def test_jsrl_teacher_rolls_in_then_student_acts():
    agent = small_agent()
    teacher = Teacher(FixedQ([0.0, 1.0]), 2, eval_epsilon=0.0)
    student = JSRLStudent(agent, teacher, CONFIG, num_envs=1)
    student.roll_in[:] = 3
    agent.steps = 10_000  # past exploration: the student acts greedily
    obs = np.zeros((1, 4), np.float32)
    student_action = int(agent.greedy_actions(obs)[0])
    teacher.network.values = torch.tensor([1.0, 0.0]) if student_action == 1 else torch.tensor([0.0, 1.0])
    taken = []
    for t in range(5):
        action = student.act(obs)
        taken.append(int(action[0]))
        student.observe(TransitionBatch(obs, action, np.zeros(1), np.array([False]), np.array([False]), obs))
    assert taken == [1 - student_action] * 3 + [student_action] * 2
    assert (student.act(obs, explore=False) == student_action).all()  # evaluation: the student alone
    student.observe(TransitionBatch(obs, action, np.zeros(1), np.array([True]), np.array([False]), obs))
    assert student.episode_step[0] == 0 and 1 <= student.roll_in[0] <= 10
    student.start_online()
    student.record_score(0.5, online_steps=100)
    assert student.max_roll_in == 8  # shrinks by 0.8 after every evaluation


def test_finetune_reloads_the_teacher_and_refuses_other_architectures():
    teacher_agent = small_agent(seed=1)
    teacher = Teacher.from_agent(teacher_agent)
    student_agent = small_agent(seed=2)
    student = build_student("finetune", student_agent, teacher, CONFIG)
    obs = torch.randn(3, 4)
    torch.testing.assert_close(student_agent.online(obs), teacher_agent.online(obs))
    torch.testing.assert_close(student_agent.target(obs), teacher_agent.online(obs))
    assert (
        student.learning_rate == pytest.approx(1e-4) and student.epsilon == student_agent.config.epsilon_end
    )
    with pytest.raises(AnewError, match="architecture"):
        reload_teacher_weights(small_agent(hidden=(32,)), teacher)


def test_finetune_a_rainbow_student_from_a_dopamine_rainbow_teacher(fixtures_dir):
    """Parameters copy in order, so Dopamine's RainbowNetwork (head.weight) loads into anew's (head.out.weight)."""
    rainbow = pytest.importorskip("anew.agents.rainbow")
    folder = fixtures_dir / "dopamine" / "jax_rainbow_breakout"
    teacher = Teacher.from_dopamine(folder, "rainbow")
    config = dataclasses.replace(rainbow.PRESETS["dopamine-rainbow"], buffer_size=1_000, torso="nature")
    space = gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)
    agent = rainbow.RainbowAgent(config, AgentSpec(space, gym.spaces.Discrete(4)))
    build_student("finetune", agent, teacher, CONFIG)
    expected = np.load(folder / "q_values_expected.npz")
    obs = expected["states"].transpose(0, 3, 1, 2)
    with torch.no_grad():
        np.testing.assert_allclose(
            agent.online(agent.to_tensor(obs)).numpy(), expected["q_values"], atol=1e-5
        )


def test_scratch_is_the_plain_agent():
    agent = small_agent()
    assert build_student("scratch", agent, None, CONFIG) is agent


# ---------------------------------------------------------------------- each runs a few steps
@pytest.mark.parametrize("name", sorted(METHODS))
def test_each_method_runs_a_few_steps(name):
    teacher = Teacher.from_agent(small_agent(seed=7), explore_epsilon=0.3)
    agent = small_agent()
    data = None
    if METHODS[name].uses_teacher_data:
        envs = gym.vector.SyncVectorEnv(
            [lambda: gym.make("CartPole-v1")], autoreset_mode=gym.vector.AutoresetMode.SAME_STEP
        )
        data = replay_like(agent.replay, 300, num_envs=1)
        collect_teacher_replay(teacher, envs, 100, data, seed=0)
        envs.close()
    student = build_student(name, agent, teacher, CONFIG, data)
    if isinstance(student, ReincarnatingStudent) and student.phase == "offline":
        for _ in range(CONFIG.offline_steps):
            metrics = student.offline_update()
        assert metrics[f"losses/{METHODS[name].offline.name}_loss"] >= 0
        student.start_online()
    before = [p.detach().clone() for p in agent.online.parameters()]
    step_cartpole(student, 40)
    assert agent.steps == 40 and agent.updates == 6
    assert any(not torch.equal(a, b) for a, b in zip(before, agent.online.parameters()))
    if hasattr(student, "record_score"):
        student.record_score(0.5, online_steps=40)
