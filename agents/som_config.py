"""SOM's configuration: every field with its meaning, the presets per game and the checks of a config.

The paper's constants (inference steps and rate, network, optimiser) are unverified (reference §2.1). The
inference defaults are the reference's (5 SGD steps at 0.1). The network and learner are choices of this
implementation, made on the coin game with a CPU budget: on an egocentric 7 x 7 window, a linear policy over
"board x goal" products (``torso="bilinear"``) learned to prefer coins of the goal colours, where an MLP over
the same window learned to step onto coins of any colour (probe: 0.44 onto a good coin, 0.48 onto a bad one);
the conv torso cost too much per step here to be tried at length. Reusing each batch of episodes (4 epochs x 4
minibatches, PPO's clip) learned within 300k steps where one A2C step per batch barely moved.

The estimate moves slowly (5 steps at 0.1 per observed move: its mass on the true goal rose from 1/3 to about
0.63 over a coin-game episode), so fed raw it is nearly uniform and the policy learned to ignore it: SOM ended
level with NOM (9.06 vs 9.38 and 9.06 vs 9.27 at 800k steps, seeds 1-2) although a TOG-trained network playing
with the same kind of estimate scored 11.0 against NOM's 9.0. Fed centred (``centre_goal_input``: minus the
uniform over the goals it may be, so "nothing known" is zeros) and over the two goals it may be
(``distinct_goals``, the coin game's rule), SOM's policy uses it (probe, seed 1, 600k steps: 11.3).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from anew.errors import AnewError

OTHER_MODELS = ("som", "nom", "tog", "ipp", "spp")
OPPONENTS = ("self", "random")


@dataclass
class SOMConfig:
    """SOM hyperparameters. The paper's constants are unverified (reference §2.1): these are the reference's
    plausible defaults (inference lr 0.1, a few steps; a small network; Adam around 1e-3; entropy 0.01)."""

    other_model: Literal["som", "nom", "tog", "ipp", "spp"] = "som"
    """som (inferred goal), nom (no model of the other), tog (true other goal), ipp (auxiliary head predicting the
    other's action), spp (separate predictor of the other's action, fed to the policy)."""
    opponent: str = "self"
    """Who plays the other seat: self (the same network, self-play), random (uniform moves) or the path of a
    saved SOM-family run or checkpoint of the same game (it plays as it was evaluated, and is not trained)."""
    seat: int = 0
    """With an opponent, the slot this agent plays (the opponent plays the other)."""
    inference_steps: int = 5
    """SGD steps on the estimate's logits per observed action of the other (unverified; reference: 1-10)."""
    inference_lr: float = 0.1
    """Learning rate of those steps (unverified; reference: 0.1)."""
    distinct_goals: bool = False
    """The estimate puts no mass on the observer's own goal (the SOM games draw the two goals without
    replacement); off, it spreads over every goal as in the paper's description."""
    centre_goal_input: bool = True
    """Feed the other-goal input minus its uninformative value (the uniform over the goals it may be), so an
    estimate that has learned nothing is zero and only its departures from uniform reach the weights (SOM and
    TOG alike: for TOG it is a re-parametrisation). The paper's input encoding is unverified."""
    torso: Literal["conv", "mlp", "bilinear"] = "bilinear"
    """conv: 3x3 convs over the board with the goal vectors as constant planes; mlp: dense over everything;
    bilinear: dense over everything and every board entry times every goal entry (a goal-gated first layer)."""
    egocentric: bool = True
    """Re-centre the board on the viewer (off-grid cells zero, plus an on-grid plane) before the torso: an
    implementation choice (the paper's input encoding is unverified) that makes the games' moves translation-free."""
    view_radius: int = 3
    """With ``egocentric``, the half-width of the window around the viewer (0: the whole board from any cell)."""
    shared_trunk: bool = False
    """One trunk for policy and value (else the value has its own, as in CleanRL's actor-critic)."""
    channels: tuple[int, ...] = (32, 32)
    """Conv channels (conv torso)."""
    hidden: tuple[int, ...] = ()
    """Dense layers after the convs (or of the mlp torso)."""
    lr: float = 3e-3
    """Adam learning rate (the paper's A3C optimiser settings are unverified)."""
    adam_eps: float = 1e-5
    """Adam epsilon."""
    gamma: float = 0.99
    """Discount per env step (both players' moves count)."""
    gae_lambda: float = 1.0
    """GAE lambda over each player's own turns; 1 is the Monte Carlo return minus the value (the observation
    has no step counter, so a bootstrapped value is a rough guess)."""
    epochs: int = 4
    """Passes over each batch of episodes (1: synchronous A2C, the paper's family; more: PPO-style reuse with
    the clipped surrogate, a sample-efficiency choice of this implementation)."""
    minibatches: int = 4
    """Optimiser steps per pass, each on a share of the games (1: one step on the whole batch, A2C)."""
    clip_coef: float = 0.2
    """PPO's ratio clipping for epochs after the first (at the acting weights the ratio is 1: A2C's gradient)."""
    normalize_advantages: bool = True
    """Standardise the advantages over each batch's decisions (mean 0, std 1)."""
    entropy_coef: float = 0.01
    """Weight of the entropy bonus."""
    value_coef: float = 0.5
    """Weight of the value loss."""
    other_action_coef: float = 1.0
    """Weight of IPP's and SPP's cross-entropy on the other's actions."""
    reward_scale: float = 1.0
    """Rewards are multiplied by this before the returns (coin game rewards reach 32)."""
    max_grad_norm: float = 0.5
    """Clip the global gradient norm (0 disables)."""
    eval_sample: bool = True
    """Evaluate the stochastic policy, as trained; False takes the most likely action."""


PRESETS: dict[str, SOMConfig] = {
    "coin-game": SOMConfig(distinct_goals=True),  # 8 x 8: a 7 x 7 window around the player
    "recipe-game": SOMConfig(distinct_goals=True, view_radius=4),  # 5 x 5: the whole board from any cell
    "door-game": SOMConfig(distinct_goals=True, view_radius=4),
}


def default_preset(env_id: str) -> str:
    """The preset named after the game in ``env_id`` (coin-game when nothing matches)."""
    for prefix, preset in (("anew/RecipeGame", "recipe-game"), ("anew/DoorGame", "door-game")):
        if env_id.startswith(prefix):
            return preset
    return "coin-game"


def check_som_config(config: SOMConfig) -> None:
    """Reject settings no run could use, naming the flag."""
    if config.other_model not in OTHER_MODELS:
        raise AnewError(
            f"--other-model must be one of {', '.join(OTHER_MODELS)} (got {config.other_model!r})"
        )
    if not config.opponent:
        raise AnewError("--opponent must be self, random or the path of a saved SOM-family run")
    if config.torso not in ("conv", "mlp", "bilinear"):
        raise AnewError(f"--torso must be conv, mlp or bilinear (got {config.torso!r})")
    if config.seat not in (0, 1):
        raise AnewError(f"--seat must be 0 or 1 (got {config.seat})")
    if config.other_model == "som" and config.inference_steps < 1:
        raise AnewError("--inference-steps must be at least 1 for --other-model som")
