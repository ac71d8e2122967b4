"""SOM's online inference of the other player's hidden goal, and the views it runs on.

The inference (Raileanu et al., 2018, §3): the observer runs its own network from the other's point of view,
f(s_other, z̃, z_self), with the goal slots swapped (the estimate z̃ = softmax(logits) where the other's own goal
goes, the observer's true goal where the other's estimate of it goes), and takes a few SGD steps on the logits
so that the action the other was seen to take becomes likely. The weights are frozen: the network is called
with detached parameters (``torch.func.functional_call``) and only the logits are differentiated.

Observations are the SOM games' ``[..., C, H, W]`` with the own goal as the last ``num_goals`` constant planes;
``swap_index`` (the world's ``env_facts``) is the channel order that exchanges "self" and "other".
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call


def split_goal(obs: torch.Tensor, num_goals: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(board [..., C - G, H, W], own goal one-hot [..., G])`` of observations ``[..., C, H, W]``."""
    return obs[..., :-num_goals, :, :], obs[..., -num_goals:, 0, 0]


def other_board(obs: torch.Tensor, swap_index: torch.Tensor, num_goals: int) -> torch.Tensor:
    """The board as the other player sees it: the viewer's observation with its channels permuted by the
    world's perspective swap, goal planes dropped (the inference puts the estimate in their place)."""
    return split_goal(obs.index_select(-3, swap_index), num_goals)[0]


def frozen_parameters(module: nn.Module) -> dict[str, torch.Tensor]:
    """The module's parameters and buffers, detached: calling it with these builds no graph into its weights."""
    tensors = dict(module.named_parameters()) | dict(module.named_buffers())
    return {name: tensor.detach() for name, tensor in tensors.items()}


def estimate(logits: torch.Tensor, excluded: torch.Tensor | None = None) -> torch.Tensor:
    """The estimate z̃ = softmax(logits) over goals, with zero mass on the ``excluded`` ones (bool, same shape):
    the observer's own goal when the game draws the two goals without replacement."""
    if excluded is not None:
        logits = logits.masked_fill(excluded, float("-inf"))
    return torch.softmax(logits, dim=-1)


def uninformative(own_goal: torch.Tensor, distinct_goals: bool) -> torch.Tensor:
    """What a viewer with goal ``own_goal [..., G]`` (one-hot, or an estimate) knows of the other's goal before
    seeing it move: the uniform over all goals, or over the goals but its own when the two always differ."""
    goals = own_goal.shape[-1]
    return (1 - own_goal) / (goals - 1) if distinct_goals else torch.full_like(own_goal, 1 / goals)


def infer_goal_logits(
    action_logits: Callable[[torch.Tensor], torch.Tensor],
    belief_logits: torch.Tensor,
    actions: torch.Tensor,
    steps: int,
    lr: float,
    excluded: torch.Tensor | None = None,
) -> torch.Tensor:
    """``steps`` SGD steps (learning rate ``lr``) on ``belief_logits [N, G]`` minimising the cross-entropy of
    the observed ``actions [N]`` under ``action_logits(estimate(belief_logits, excluded)) -> [N, A]``; returns
    the new logits (detached). Rows are independent problems: the loss is summed over them, so one row's step
    does not depend on how many others there are. ``action_logits`` must hold the network's weights fixed."""
    logits = belief_logits.detach()
    for _ in range(steps):
        with torch.enable_grad():
            leaf = logits.clone().requires_grad_(True)
            predicted = action_logits(estimate(leaf, excluded))
            loss = F.cross_entropy(predicted, actions.long(), reduction="sum")
            (grad,) = torch.autograd.grad(loss, leaf)
        logits = (leaf - lr * grad).detach()
    return logits


def som_update(
    network: nn.Module,
    board_seen_by_other: torch.Tensor,
    observer_goal: torch.Tensor,
    belief_logits: torch.Tensor,
    other_actions: torch.Tensor,
    steps: int,
    lr: float,
    distinct_goals: bool = False,
    centre_goal_input: bool = False,
) -> torch.Tensor:
    """SOM's belief update after observing the other's actions, with f (a :class:`SOMNetwork`) frozen and run
    as f(s_other, z̃, z_self): the board seen by the other, the estimate where its own goal goes, the observer's
    goal where its estimate of the other's goal goes. ``distinct_goals``: the estimate puts no mass on the
    observer's own goal. ``centre_goal_input``: the network takes its other-goal input minus the uniform over
    the goals it may be given its own goal (:func:`uninformative`; the estimate stands for the other's goal). Shapes: board ``[N, C', H, W]``, goals and logits ``[N, G]``, actions ``[N]``; returns
    the updated logits ``[N, G]``."""
    params = frozen_parameters(network)
    with torch.no_grad():
        viewed = network.view(board_seen_by_other)  # the same at every step: computed once

    def action_logits(goal_estimate: torch.Tensor) -> torch.Tensor:
        other_slot = observer_goal
        if centre_goal_input:  # as the other would be fed: its own goal is the estimate
            other_slot = other_slot - uninformative(goal_estimate, distinct_goals)
        return functional_call(network, params, (viewed, goal_estimate, other_slot, False, True)).logits

    excluded = observer_goal > 0.5 if distinct_goals else None
    return infer_goal_logits(action_logits, belief_logits, other_actions, steps, lr, excluded)
