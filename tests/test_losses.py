"""Pure targets, losses and schedules of the value-based agents."""

from __future__ import annotations

import pytest
import torch

from anew.agents.losses import distillation_loss, linear_schedule, q_learning_target, td_loss


def test_q_learning_target_uses_target_max_or_online_argmax() -> None:
    reward = torch.tensor([1.0, 0.5])
    discount = torch.tensor([0.9, 0.0])  # second transition is terminal
    next_target = torch.tensor([[1.0, 3.0], [5.0, 7.0]])
    next_online = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    assert q_learning_target(reward, discount, next_target).tolist() == pytest.approx([1.0 + 0.9 * 3.0, 0.5])
    double = q_learning_target(reward, discount, next_target, next_online)
    assert double.tolist() == pytest.approx([1.0 + 0.9 * 1.0, 0.5])


def test_td_losses_match_dopamine_definitions() -> None:
    q, target = torch.tensor([0.0, 0.0, 0.0]), torch.tensor([0.5, 2.0, -3.0])
    assert td_loss(q, target, "mse").tolist() == pytest.approx([0.25, 4.0, 9.0])  # no 1/2
    assert td_loss(q, target, "huber").tolist() == pytest.approx([0.125, 1.5, 2.5])
    with pytest.raises(ValueError):
        td_loss(q, target, "l1")


def test_linear_schedule_is_dopamines_schedule() -> None:
    assert linear_schedule(0, 1.0, 0.01, 100, warmup_steps=50) == 1.0
    assert linear_schedule(50, 1.0, 0.01, 100, warmup_steps=50) == 1.0
    assert linear_schedule(100, 1.0, 0.01, 100, warmup_steps=50) == pytest.approx(0.505)
    assert linear_schedule(10_000, 1.0, 0.01, 100, warmup_steps=50) == pytest.approx(0.01)


def test_distillation_loss_is_kl_teacher_student() -> None:
    teacher = torch.tensor([[1.0, 0.0, -1.0]])
    assert distillation_loss(teacher.clone(), teacher, 0.1).item() == pytest.approx(0.0, abs=1e-6)
    student = torch.tensor([[0.0, 1.0, 0.0]], requires_grad=True)
    loss = distillation_loss(student, teacher, 1.0)
    p = torch.softmax(teacher, 1)
    expected = (p * (p.log() - torch.log_softmax(student.detach(), 1))).sum()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    loss.sum().backward()
    assert student.grad is not None
