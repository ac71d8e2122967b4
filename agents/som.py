"""SOM, Self Other-Modeling (Raileanu, Denton, Szlam & Fergus, ICML 2018): infer the other player's hidden goal
by running one's own policy network from the other's point of view.

The config and its presets are in ``som_config.py`` (re-exported here), the network in ``som_net.py``, the
inference in ``som_inference.py``, the per-episode estimates and their accuracy in ``som_episodes.py``, the
losses in ``som_losses.py``. No official code exists; this follows the paper's description, and what it leaves
open is a config field (documented there).

One network f(state, own goal, other input) -> (policy, value) acts for both players of each game (self-play):
player i plays f(s_i, z_i, z̃_i), where z̃_i = softmax(logits_i) estimates the other's goal. The logits start
at zero at every episode start (training and evaluation alike, each with its own estimates) and, each time the
other player is seen to move, take ``inference_steps`` SGD steps on the cross-entropy of that action under
f(s_other, z̃_i, z_i) with the weights frozen (``som_update``); s_other is the player's observation through the
world's perspective swap. The weights learn by advantage actor-critic over whole episodes of the batched games
(synchronous: every game finishes an episode, then the batch is learned from): each player's own return on
its own turns (``turn_based_advantages``), a value loss and an entropy bonus. ``epochs`` = ``minibatches`` = 1
is plain A2C; the presets reuse each batch 4 x 4 times with PPO's clipped surrogate (see ``som_config.py``).

Baselines (``other_model``): NOM (no input for the other), TOG (the true other goal), IPP (an extra head
predicting the other's action, cross-entropy) and SPP (a separate network predicting it, its distribution fed to
the policy). ``opponent="random"`` puts a uniformly random player in the other seat (not trained, not counted).
A match between two agents calls each one's :meth:`SOMAgent.choose`, then each one's :meth:`SOMAgent.witness`
with the moves played (``benchmarks/bench_som.py``).
"""

from __future__ import annotations

import copy
from typing import Any

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from anew.agents.commnet_buffer import EpisodeBuffer
from anew.agents.core import AgentBase, AgentSpec, TransitionBatch
from anew.agents.som_config import OPPONENTS, PRESETS, SOMConfig, check_som_config, default_preset
from anew.agents.som_episodes import EpisodeState
from anew.agents.som_inference import estimate, other_board, som_update, split_goal, uninformative
from anew.agents.som_losses import actor_critic_losses, masked_cross_entropy, turn_based_advantages
from anew.agents.som_net import ActionPredictor, SOMNetwork
from anew.errors import AnewError

__all__ = ["PRESETS", "SOMAgent", "SOMConfig", "default_preset"]


def sample_categorical(probs: torch.Tensor, uniforms: torch.Tensor) -> torch.Tensor:
    """Inverse-CDF draws from ``probs [..., A]`` with ``uniforms [...]`` in [0, 1)."""
    below = (probs.cumsum(-1) <= uniforms.unsqueeze(-1)).sum(-1)
    return below.clamp(max=probs.shape[-1] - 1)


class SOMAgent(AgentBase):
    """Both players of a batch of two-player hidden-goal games, each modelling the other with its own network."""

    def __init__(self, config: SOMConfig, spec: AgentSpec):
        check_som_config(config)
        facts = spec.env_facts
        if spec.num_agents != 2 or "swap_index" not in facts or "num_goals" not in facts:
            raise AnewError(
                "SOM plays two-player hidden-goal games that declare their perspective swap and goal planes: "
                "use anew/CoinGame-SOM-v0, anew/RecipeGame-SOM-v0 or anew/DoorGame-SOM-v0"
            )
        if not isinstance(spec.action_space, gym.spaces.Discrete):
            raise AnewError(f"SOM needs a Discrete action space per player, got {spec.action_space}")
        self.config, self.spec = config, spec
        self.device = torch.device(spec.device)
        self.num_goals, self.num_actions = int(facts["num_goals"]), int(spec.action_space.n)
        self.swap_index = torch.as_tensor(facts["swap_index"], dtype=torch.long, device=self.device)
        channels, rows, columns = spec.observation_space.shape
        board = (channels - self.num_goals, rows, columns)
        width = {"som": self.num_goals, "tog": self.num_goals, "spp": self.num_actions}.get(
            config.other_model, 0
        )
        init = torch.Generator().manual_seed(spec.seed)  # weights depend on the seed alone
        shape = {"torso": config.torso, "channels": config.channels, "hidden": config.hidden,
                 "view_radius": config.view_radius if config.egocentric else None}  # fmt: skip
        self.network = SOMNetwork(board, self.num_goals, width, self.num_actions, init, **shape,
                                  other_action_head=config.other_model == "ipp",
                                  shared_trunk=config.shared_trunk).to(self.device)  # fmt: skip
        self.predictor = (
            ActionPredictor(board, self.num_goals, self.num_actions, init, **shape).to(self.device)
            if config.other_model == "spp"
            else None
        )
        self.optimizer = torch.optim.Adam(self.parameters(), lr=config.lr, eps=config.adam_eps)
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(int(np.random.SeedSequence([spec.seed, 2_018]).generate_state(1)[0]))
        # a saved opponent: one copy per mode, each acting in its own evaluation mode (any number of games)
        opponent = self.load_opponent()
        self.opponents = {True: opponent, False: copy.deepcopy(opponent)}
        seats = [config.opponent == "self" or config.seat == slot for slot in range(2)]
        self.controlled = torch.tensor(seats, device=self.device)  # the slots it plays (and trains)
        self.episodes: dict[bool, EpisodeState] = {True: self.new_state(spec.num_envs)}
        self.buffer = EpisodeBuffer(spec.num_envs)
        self.pending: tuple[torch.Tensor, torch.Tensor] | None = None  # last choice: other input, log-prob
        self.latest_accuracy: dict[str, float] = {}
        self.steps = 0
        self.updates = 0

    def load_opponent(self) -> SOMAgent | None:
        """The saved agent named by ``opponent`` (None for self-play or random moves), checked to fit."""
        path = self.config.opponent
        if path in OPPONENTS:
            return None
        if self.spec.load_agent is None:
            raise AnewError(f"--opponent {path}: this caller cannot load saved agents (use `anew train som`)")
        opponent = self.spec.load_agent(path)
        fits = (
            isinstance(opponent, SOMAgent)
            and opponent.spec.observation_space == self.spec.observation_space
            and opponent.num_actions == self.num_actions
        )
        if not fits:
            raise AnewError(
                f"--opponent {path} is not a SOM-family agent (som, nom, tog, ipp, spp) of this game: train one "
                "with `anew train som --env-id <this game>` and pass its run folder"
            )
        return opponent

    def parameters(self) -> list[nn.Parameter]:
        """Every trained weight: the network's and SPP's predictor's."""
        modules = [self.network] + ([self.predictor] if self.predictor is not None else [])
        return [p for module in modules for p in module.parameters()]

    def new_state(self, games: int) -> EpisodeState:
        return EpisodeState(games, self.num_goals, self.device)

    # ------------------------------------------------------------------ episodes
    def episode_state(self, explore: bool, games: int) -> EpisodeState:
        """Training's or evaluation's estimates; evaluation's are rebuilt for a new number of games."""
        state = self.episodes.get(explore)
        if state is None or state.num_games != games:
            if explore:
                raise AnewError(f"SOM was built for {self.spec.num_envs} games, got a batch of {games}")
            state = self.episodes[False] = self.new_state(games)
        return state

    def episode_start(self, mask: np.ndarray, explore: bool = True) -> None:
        """Reset the estimates of the other's goal in the games where ``mask`` is true (each mode its own)."""
        self.episode_state(explore, len(mask)).episode_start(mask)
        opponent = self.opponents[explore]
        if opponent is not None:
            opponent.episode_start(mask, explore=False)

    # ------------------------------------------------------------------ acting
    def tensor(self, array: Any, dtype: Any = None) -> torch.Tensor:
        return torch.as_tensor(np.asarray(array, dtype=dtype), device=self.device)

    def views(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(boards as the torso sees them [..., 2, C', S, S], own goals [..., 2, G])`` of ``obs [..., 2, C, H, W]``."""
        board, goal = split_goal(obs, self.num_goals)
        viewed = self.network.view(board.flatten(0, -4))
        return viewed.view(*board.shape[:-3], *viewed.shape[1:]), goal

    def other_input(self, views: torch.Tensor, goal: torch.Tensor, logits: torch.Tensor,
                    true_goals: torch.Tensor | None) -> torch.Tensor:  # fmt: skip
        """What f gets for the other ``[games, 2, width]``: the estimate (som), the true goal (tog), the
        predicted action distribution (spp) or nothing (nom, ipp)."""
        model, games = self.config.other_model, goal.shape[0]
        if model == "tog" and true_goals is None:
            raise AnewError(
                "--other-model tog needs the true goals in info['goal'] (the SOM games give them)"
            )
        if model in ("som", "tog"):
            goal_input = (
                estimate(logits, goal > 0.5 if self.config.distinct_goals else None)
                if model == "som"
                else F.one_hot(true_goals[:, [1, 0]].long(), self.num_goals).float()
            )
            if self.config.centre_goal_input:  # zero when nothing is known
                goal_input = goal_input - uninformative(goal, self.config.distinct_goals)
            return goal_input
        if model == "spp":
            predicted = self.predictor(views.flatten(0, 1), goal.flatten(0, 1), viewed=True)
            return torch.softmax(predicted, dim=-1).view(games, 2, -1)
        return goal.new_zeros((games, 2, 0))

    def forward(self, views: torch.Tensor, goal: torch.Tensor, other: torch.Tensor):
        """f on viewed boards ``[..., 2, C', S, S]``, goals and other inputs ``[..., 2, k]``: logits
        ``[..., 2, A]``, values ``[..., 2]`` and IPP's logits (or None)."""
        lead = goal.shape[:-1]
        out = self.network(views.flatten(0, -4), goal.flatten(0, -2), other.flatten(0, -2), viewed=True)
        return (out.logits.view(*lead, -1), out.value.view(lead),
                None if out.other_logits is None else out.other_logits.view(*lead, -1))  # fmt: skip

    @torch.no_grad()
    def act(
        self,
        obs: np.ndarray,
        explore: bool = True,
        rng: np.random.Generator | None = None,
        info: dict[str, Any] | None = None,
    ) -> np.ndarray:
        """Moves ``[games, 2]`` for both slots (the env applies the mover's): :meth:`choose`, then the
        players it controls :meth:`witness` the moves (self-play: its own; else the opponent's too)."""
        actions = self.choose(obs, explore, rng, info)
        self.witness(obs, actions, explore, info)
        return actions

    @torch.no_grad()
    def choose(
        self,
        obs: np.ndarray,
        explore: bool = True,
        rng: np.random.Generator | None = None,
        info: dict[str, Any] | None = None,
    ) -> np.ndarray:
        """This step's moves ``[games, 2]`` from the current estimates, without updating them (a match between
        two agents calls each one's ``choose``, then each one's :meth:`witness` with the moves played)."""
        obs_t, games = self.tensor(obs, np.float32), len(obs)
        state = self.episode_state(explore, games)
        true_goals = self.tensor(info["goal"], np.int64) if info and "goal" in info else None
        views, goal = self.views(obs_t)
        other = self.other_input(views, goal, state.logits, true_goals)
        logits = self.forward(views, goal, other)[0]
        probs = torch.softmax(logits, dim=-1)
        uniforms = (
            torch.as_tensor(rng.random((games, 2)), dtype=torch.float32, device=self.device)
            if rng is not None
            else torch.rand((games, 2), generator=self.generator, device=self.device)
        )
        actions = (
            sample_categorical(probs, uniforms) if explore or self.config.eval_sample else probs.argmax(-1)
        )
        seat, opponent = 1 - self.config.seat, self.opponents[explore]
        if self.config.opponent == "random":  # the uniform draw of the opponent's seat picks its move
            actions[:, seat] = (uniforms[:, seat] * self.num_actions).long().clamp(max=self.num_actions - 1)
        elif opponent is not None:
            moves = opponent.choose(obs, False, rng, info)[:, seat]
            actions[:, seat] = torch.as_tensor(moves, device=self.device)
        if explore:
            self.pending = (other, torch.log_softmax(logits, dim=-1).gather(-1, actions[..., None])[..., 0])
        return actions.cpu().numpy().astype(np.int64)

    @torch.no_grad()
    def witness(
        self, obs: np.ndarray, actions: np.ndarray, explore: bool = True, info: dict[str, Any] | None = None
    ) -> None:
        """The moves ``actions [games, 2]`` were played at ``obs``: record how often the estimates named the
        other's goal (when ``info`` has the true goals), then each controlled player that saw the other move
        updates its estimate (som; a no-op for the baselines). A saved opponent witnesses them too."""
        opponent = self.opponents[explore]
        if opponent is not None:
            opponent.witness(obs, actions, False, info)
        if self.config.other_model != "som":
            return
        obs_t, games = self.tensor(obs, np.float32), len(obs)
        state = self.episode_state(explore, games)
        info = info or {}
        active = self.tensor(info.get("active", np.ones((games, 2))), bool)
        moved = self.tensor(info.get("to_move", np.ones((games, 2))), bool) & active
        goal = split_goal(obs_t, self.num_goals)[1]
        counted = self.controlled[None, :] & active
        if "goal" in info:
            named = estimate(state.logits, goal > 0.5 if self.config.distinct_goals else None).argmax(-1)
            correct = named == self.tensor(info["goal"], np.int64)[:, [1, 0]]
            state.accuracy.record(correct.cpu().numpy(), counted.cpu().numpy())
        observers = counted & moved[:, [1, 0]]  # player i saw the other (slot 1 - i) move
        games_seen, players = torch.nonzero(observers, as_tuple=True)
        if len(games_seen) == 0:
            return
        c = self.config
        state.logits[games_seen, players] = som_update(
            self.network,
            other_board(obs_t[games_seen, players], self.swap_index, self.num_goals),
            goal[games_seen, players],
            state.logits[games_seen, players],
            self.tensor(actions, np.int64)[games_seen, 1 - players],
            c.inference_steps,
            c.inference_lr,
            c.distinct_goals,
            c.centre_goal_input,
        )

    # ------------------------------------------------------------------ learning
    def observe(self, batch: TransitionBatch) -> None:
        """Buffer one vector step with the other-inputs its actions were chosen with."""
        if self.pending is None:
            raise AnewError("SOM learns from the steps it acted on: call act(explore=True) before observe()")
        games = batch.num_envs
        active = self.tensor(batch.active if batch.active is not None else np.ones((games, 2)), bool)
        to_move = self.tensor(batch.extras.get("to_move", np.ones((games, 2))), bool) & active
        terminated, truncated = self.tensor(batch.terminated, bool), self.tensor(batch.truncated, bool)
        bootstrap = torch.zeros((games, 2), device=self.device)
        if bool((truncated & ~terminated).any()):  # a time limit: V of the final observation
            next_obs = self.tensor(batch.next_obs, np.float32)
            goals = self.tensor(batch.extras["goal"], np.int64) if "goal" in batch.extras else None
            with torch.no_grad():
                views, goal = self.views(next_obs)
                other = self.other_input(views, goal, self.episodes[True].logits, goals)
                bootstrap = self.forward(views, goal, other)[1]
        self.buffer.append({
            "obs": self.tensor(batch.obs, np.float32),
            "other": self.pending[0],
            "log_prob": self.pending[1],
            "action": self.tensor(batch.action, np.int64),
            "reward": self.tensor(batch.reward, np.float32) * self.config.reward_scale,
            "to_move": to_move,
            "active": active,
            "terminated": terminated,
            "done": terminated | truncated,
            "bootstrap": bootstrap,
        })  # fmt: skip
        self.pending = None
        self.steps += games

    def update(self) -> dict[str, float]:
        """Learn from the buffered episodes once every game has finished one since the last update (else do
        nothing): ``epochs`` passes of ``minibatches`` optimiser steps (1 x 1: synchronous A2C)."""
        if not self.buffer or not self.buffer.ready():
            return {}
        c, batch = self.config, self.buffer.batch()
        f = batch.fields
        steps, games = f["reward"].shape[:2]
        with torch.no_grad():
            f["view"], f["goal"] = self.views(f.pop("obs"))  # once for all passes
            values = self.forward(f["view"], f["goal"], f["other"])[1]
        decision = f["to_move"] & self.controlled
        per_player = (steps, games * 2)
        advantages = turn_based_advantages(
            f["reward"].reshape(per_player),
            values.reshape(per_player),
            decision.reshape(per_player),
            f["terminated"].repeat_interleave(2, dim=1),
            f["done"].repeat_interleave(2, dim=1),
            f["bootstrap"].reshape(per_player),
            c.gamma,
            c.gae_lambda,
        ).view(steps, games, 2)
        targets = {"advantage": advantages, "return": advantages + values}
        masks = {
            "decision": decision & batch.trainable[:, :, None],
            # player i predicts the other's (slot 1 - i) action at the states where the other moved
            "seen": f["to_move"][..., [1, 0]] & f["active"] & self.controlled & batch.trainable[:, :, None],
        }
        if c.normalize_advantages:
            chosen = advantages[masks["decision"]]
            if chosen.numel() > 1:
                targets["advantage"] = (advantages - chosen.mean()) / (chosen.std() + 1e-8)
        metrics: dict[str, float] = {}
        for _ in range(c.epochs):
            order = torch.randperm(games, generator=self.generator, device=self.device)
            for part in order.chunk(c.minibatches):
                metrics = self.learn_on({k: v[:, part] for k, v in (f | targets | masks).items()})
        self.buffer.drop_trained()
        self.updates += 1
        self.latest_accuracy = self.episodes[True].accuracy.take() or self.latest_accuracy
        return metrics | {"charts/episodes_per_update": float(batch.episodes)}

    def learn_on(self, f: dict[str, torch.Tensor]) -> dict[str, float]:
        """One optimiser step on some games' steps (``[T, games, 2, ...]`` fields, targets and masks)."""
        c = self.config
        logits, values, other_logits = self.forward(f["view"], f["goal"], f["other"])
        losses = actor_critic_losses(logits, f["action"], f["log_prob"], values, f["advantage"], f["return"],
                                     f["decision"], c.clip_coef)  # fmt: skip
        loss = losses.policy + c.value_coef * losses.value - c.entropy_coef * losses.entropy
        metrics = {"losses/policy_loss": losses.policy.item(), "losses/value_loss": losses.value.item(),
                   "losses/entropy": losses.entropy.item()}  # fmt: skip
        if self.predictor is not None:
            predicted = self.predictor(f["view"].flatten(0, -4), f["goal"].flatten(0, -2), viewed=True)
            other_logits = predicted.view(*logits.shape)
        if other_logits is not None:
            other_loss = masked_cross_entropy(other_logits, f["action"][..., [1, 0]], f["seen"])
            loss = loss + c.other_action_coef * other_loss
            metrics["losses/other_action_loss"] = other_loss.item()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = nn.utils.clip_grad_norm_(self.parameters(), c.max_grad_norm or float("inf"))
        self.optimizer.step()
        return metrics | {"losses/loss": loss.item(), "charts/grad_norm": float(grad_norm)}

    # ------------------------------------------------------------------ measures
    def diagnostics(self) -> dict[str, float]:
        """SOM's goal-inference accuracy per quarter of the episode, over the episodes that ended between the
        last two updates (``charts/inference_accuracy_q1`` … ``q4``)."""
        return {f"charts/{name}": value for name, value in self.latest_accuracy.items()}

    def evaluation_measures(self) -> dict[str, float]:
        """SOM's goal-inference accuracy per quarter over the evaluation episodes that ended since the last
        call (``inference_accuracy_q1`` … ``q4``; empty for the baselines). Call it after each evaluation: it
        resets the count and drops the evaluation's unfinished episodes."""
        state = self.episodes.get(False)
        if state is None:
            return {}
        measures = state.accuracy.take()
        state.accuracy.discard(np.ones(state.num_games, dtype=bool))
        return measures if self.config.other_model == "som" else {}

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        return {
            "network": self.network.state_dict(),
            "predictor": self.predictor.state_dict() if self.predictor is not None else {},
            "optimizer": self.optimizer.state_dict(),
            "generator": self.generator.get_state(),
            "episodes": self.episodes[True].state_dict(),
            "buffer": self.buffer.state_dict(),
            "latest_accuracy": dict(self.latest_accuracy),
            "steps": self.steps,
            "updates": self.updates,
        } | self.opponent_state()

    def opponent_state(self) -> dict[str, Any]:
        """The saved opponent's estimates in the running training episodes (its weights are its run's)."""
        opponent = self.opponents[True]
        if opponent is None or False not in opponent.episodes:
            return {}
        return {"opponent_episodes": opponent.episodes[False].state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.network.load_state_dict(state["network"])
        if self.predictor is not None:
            self.predictor.load_state_dict(state["predictor"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        self.latest_accuracy = {k: float(v) for k, v in state["latest_accuracy"].items()}
        self.steps, self.updates = int(state["steps"]), int(state["updates"])
        self.pending = None
        self.episodes.pop(False, None)
        if state["episodes"]["logits"].shape[0] != self.spec.num_envs:
            return  # another number of games (e.g. `anew evaluate`): acting is restored, training starts afresh
        self.episodes[True].load_state_dict(state["episodes"])
        self.buffer.load_state_dict(state["buffer"])
        opponent = self.opponents[True]
        if opponent is not None and "opponent_episodes" in state:
            saved = state["opponent_episodes"]
            opponent.episode_state(False, saved["logits"].shape[0]).load_state_dict(saved)
