"""SOM's network f(state, own goal, other input) -> (policy logits, value), and SPP's action predictor.

The board (the observation without its goal planes) and the two goal vectors meet at the input: for the conv
torso the goal vectors are broadcast to constant planes and stacked on the board (so a first-layer filter can
pick "coins of my colour or yours"), for the mlp torso they are concatenated to the flattened board. The same
module serves acting (own goal = the player's goal, other input = the estimate of the other's goal) and SOM's
inference (own goal = the estimate, other input = the observer's goal, board seen by the other).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import nn

from anew.agents.networks import layer_init, mlp


def egocentric(board: torch.Tensor, radius: int = 0) -> torch.Tensor:
    """``board [N, C, H, W]`` re-centred on the viewer (channel 0 marks its cell): the ``2r + 1`` square window
    around it, ``[N, C + 1, 2r + 1, 2r + 1]``, zeros off the grid and an extra plane that is 1 on the grid (its
    edges). ``radius`` 0 takes r = max(H, W) - 1, which shows the whole board from every cell."""
    n, _, h, w = board.shape
    r = radius or max(h, w) - 1
    flat = board[:, 0].flatten(1).argmax(dim=1)  # the viewer's cell (0 if it has none)
    row, col = flat // w, flat % w
    offsets = torch.arange(-r, r + 1, device=board.device)[None, :]
    rows, cols = offsets + row[:, None], offsets + col[:, None]  # [N, 2r+1]
    inside = ((rows >= 0) & (rows < h))[:, :, None] & ((cols >= 0) & (cols < w))[:, None, :]
    planes = torch.cat([board, torch.ones_like(board[:, :1])], dim=1)
    picked = planes[
        torch.arange(n, device=board.device)[:, None, None],
        :,
        rows.clamp(0, h - 1)[:, :, None],
        cols.clamp(0, w - 1)[:, None, :],
    ]  # [N, 2H-1, 2W-1, C+1]
    return (picked * inside[..., None]).permute(0, 3, 1, 2)


def centred_shape(board_shape: Sequence[int], radius: int = 0) -> tuple[int, int, int]:
    """The shape :func:`egocentric` turns a ``(C, H, W)`` board into."""
    c, h, w = (int(d) for d in board_shape)
    side = 2 * (radius or max(h, w) - 1) + 1
    return c + 1, side, side


class SOMOutput(NamedTuple):
    """Policy logits ``[N, A]``, value ``[N]`` (None when not asked for) and, with an IPP head, logits of the other's action ``[N, A]``."""

    logits: torch.Tensor
    value: torch.Tensor | None
    other_logits: torch.Tensor | None


class Trunk(nn.Module):
    """Board ``[N, C, H, W]`` plus side vectors ``[N, k]`` -> features: convs over the board with the vectors
    as constant planes, then dense layers (``torso="conv"``); dense layers over everything (``"mlp"``); or dense
    layers over everything plus every board entry times every side entry (``"bilinear"``: a goal-gated first
    layer, so "a coin of the colour I am after, next to me" is linear in the input)."""

    def __init__(
        self,
        board_shape: Sequence[int],
        side: int,
        torso: str,
        channels: Sequence[int],
        hidden: Sequence[int],
        generator: torch.Generator,
    ):
        super().__init__()
        c, h, w = (int(d) for d in board_shape)
        self.torso = torso
        layers: list[nn.Module] = []
        if torso == "conv":
            in_channels = c + side
            for width in channels:
                conv = nn.Conv2d(in_channels, width, 3, padding=1)
                layers += [layer_init(conv, math.sqrt(2), generator), nn.ReLU()]
                in_channels = width
            flat = in_channels * h * w
        else:  # mlp: board and side vectors; bilinear: also every board entry times every side entry
            flat = c * h * w * (1 + side if torso == "bilinear" else 1) + side
        self.convs = nn.Sequential(*layers)
        dense = [mlp([flat, *hidden], "relu", math.sqrt(2), generator), nn.ReLU()] if hidden else []
        self.dense = nn.Sequential(*dense)
        self.out_features = int(hidden[-1]) if hidden else flat

    def forward(self, board: torch.Tensor, side: torch.Tensor) -> torch.Tensor:
        if self.torso == "conv":
            planes = side[:, :, None, None].expand(-1, -1, *board.shape[-2:])
            x = self.convs(torch.cat([board, planes], dim=1)).flatten(1)
        else:
            flat = board.flatten(1)
            parts = [flat, side]
            if self.torso == "bilinear":
                parts.append((flat[:, :, None] * side[:, None, :]).flatten(1))
            x = torch.cat(parts, dim=1)
        return self.dense(x)


class SOMNetwork(nn.Module):
    """f(board, own goal, other input) -> (policy logits, value[, IPP's logits of the other's action]).

    ``other_width`` is the size of the other input: the goal count for SOM and TOG (estimate or true goal),
    the action count for SPP (the predicted action distribution), 0 for NOM and IPP (no input). The value has
    its own trunk unless ``shared_trunk`` (CleanRL's separate actor and critic): returns of the coin game reach
    32, and a shared trunk's value gradient would swamp the policy's under gradient clipping.
    """

    def __init__(
        self,
        board_shape: Sequence[int],
        num_goals: int,
        other_width: int,
        num_actions: int,
        generator: torch.Generator,
        torso: str = "conv",
        channels: Sequence[int] = (32, 32),
        hidden: Sequence[int] = (128,),
        other_action_head: bool = False,
        view_radius: int | None = 0,
        shared_trunk: bool = False,
    ):
        super().__init__()
        self.num_goals, self.other_width, self.view_radius = num_goals, other_width, view_radius
        shape = board_shape if view_radius is None else centred_shape(board_shape, view_radius)
        side = num_goals + other_width
        self.trunk = Trunk(shape, side, torso, channels, hidden, generator)
        self.critic_trunk = None if shared_trunk else Trunk(shape, side, torso, channels, hidden, generator)
        features = self.trunk.out_features
        self.policy = layer_init(nn.Linear(features, num_actions), 0.01, generator)
        self.value = layer_init(nn.Linear(features, 1), 1.0, generator)
        self.other_action = (
            layer_init(nn.Linear(features, num_actions), 0.01, generator) if other_action_head else None
        )

    def view(self, board: torch.Tensor) -> torch.Tensor:
        """The board as the torso sees it (re-centred on the viewer unless ``view_radius`` is None)."""
        return board if self.view_radius is None else egocentric(board, self.view_radius)

    def forward(
        self,
        board: torch.Tensor,
        own_goal: torch.Tensor,
        other: torch.Tensor,
        with_value: bool = True,
        viewed: bool = False,
    ) -> SOMOutput:
        """``viewed``: ``board`` is already :meth:`view`'s output (the inference computes it once per action)."""
        board = board if viewed else self.view(board)
        side = torch.cat([own_goal, other], dim=-1)
        features = self.trunk(board, side)
        other_logits = self.other_action(features) if self.other_action is not None else None
        value = None
        if with_value:
            critic = features if self.critic_trunk is None else self.critic_trunk(board, side)
            value = self.value(critic).squeeze(-1)
        return SOMOutput(self.policy(features), value, other_logits)


class ActionPredictor(nn.Module):
    """SPP's separate network: the observer's board and own goal -> logits of the other's next action."""

    def __init__(
        self,
        board_shape: Sequence[int],
        num_goals: int,
        num_actions: int,
        generator: torch.Generator,
        torso: str = "conv",
        channels: Sequence[int] = (32, 32),
        hidden: Sequence[int] = (128,),
        view_radius: int | None = 0,
    ):
        super().__init__()
        self.view_radius = view_radius
        shape = board_shape if view_radius is None else centred_shape(board_shape, view_radius)
        self.trunk = Trunk(shape, num_goals, torso, channels, hidden, generator)
        self.head = layer_init(nn.Linear(self.trunk.out_features, num_actions), 0.01, generator)

    def forward(self, board: torch.Tensor, own_goal: torch.Tensor, viewed: bool = False) -> torch.Tensor:
        """``viewed``: ``board`` is already re-centred like :meth:`SOMNetwork.view` (same ``view_radius``)."""
        if not viewed and self.view_radius is not None:
            board = egocentric(board, self.view_radius)
        return self.head(self.trunk(board, own_goal))
