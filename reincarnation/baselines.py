"""The reincarnation baselines of Agarwal et al. (2022), each a small variation of QDagger's student.

As configured in google-research/reincarnating_rl (``configs/*.gin``):

* ``kickstarting`` (Schmitt et al. 2018): QDagger without the offline phase; online TD + weaned distillation
  (exploration then decays over ``online_epsilon_decay_steps`` from the student's epsilon_start).
* ``jsrl`` (Uchendu et al. 2022): the teacher rolls in for the first U{1..H} steps of every training episode,
  then the student acts; H shrinks by ``jsrl_roll_in_decay`` after every evaluation. Plain TD, own lr.
* ``pretrain``: offline pre-training on teacher data with TD + ``cql_coef``·CQL(τ), then plain fine-tuning at
  ``min_lr`` with a fresh Adam (``PretrainedDQNAgent``).
* ``rehearsal``: ``pretrain`` that keeps mixing teacher transitions into its online batches
  (``rehearsal_ratio`` of each batch; ``teacher_data_ratio`` in reincarnating_rl).
* ``dqfd`` (Hester et al. 2018): offline and online TD + ``margin_coef``·large-margin loss on the teacher's
  greedy actions, weaned like QDagger, at a constant ``max_lr``.
* ``finetune``: the teacher's own weights, reloaded into a student of the same architecture, trained on at
  ``min_lr`` (``reloaded_dqn.gin``).
* ``scratch``: tabula rasa, the student alone (the teacher only sets the normalisation of its scores).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from anew.agents.core import TransitionBatch
from anew.errors import AnewError
from anew.reincarnation.formats.dopamine_checkpoint import DopamineNetwork
from anew.reincarnation.qdagger import (
    DISTILL,
    QDAGGER,
    Method,
    ReincarnatingStudent,
    ReincarnationConfig,
    TeacherTerm,
)


# ---------------------------------------------------------------------- losses (pure)
def cql_loss(q_values: torch.Tensor, actions: torch.Tensor, temperature: float) -> torch.Tensor:
    """Per-sample CQL(H) term ``logsumexp(Q(s,·)/τ) − Q(s,a)/τ`` (Kumar et al. 2020, reincarnating_rl's form)."""
    scaled = q_values / temperature
    return torch.logsumexp(scaled, dim=1) - scaled.gather(1, actions.unsqueeze(1)).squeeze(1)


def large_margin_loss(
    q_values: torch.Tensor, expert_actions: torch.Tensor, margin: float, max_form: bool = False
) -> torch.Tensor:
    """Per-sample large-margin loss with ``l(a) = margin·[a ≠ a_E]``.

    ``max_form``: DQfD's ``max_a [Q(s,a) + l(a)] − Q(s,a_E)``. Otherwise reincarnating_rl's default,
    the hinge ``max(Q(s,a) + l(a) − Q(s,a_E), 0)`` averaged over actions.
    """
    expert_q = q_values.gather(1, expert_actions.unsqueeze(1))
    margins = margin * (
        1.0 - torch.nn.functional.one_hot(expert_actions, q_values.shape[1]).to(q_values.dtype)
    )
    if max_form:
        return (q_values + margins).max(dim=1).values - expert_q.squeeze(1)
    return (q_values + margins - expert_q).clamp(min=0.0).mean(dim=1)


def _cql_term(
    q: torch.Tensor, actions: torch.Tensor, teacher_q: torch.Tensor | None, config: ReincarnationConfig
) -> torch.Tensor:
    return cql_loss(q, actions, config.temperature)


def _margin_term(
    q: torch.Tensor, actions: torch.Tensor, teacher_q: torch.Tensor | None, config: ReincarnationConfig
) -> torch.Tensor:
    assert teacher_q is not None
    return large_margin_loss(q, teacher_q.argmax(dim=1), config.margin, config.dqfd_max_margin)


CQL = TeacherTerm("cql", _cql_term, "cql_coef", needs_teacher=False)
MARGIN = TeacherTerm("margin", _margin_term, "margin_coef")

METHODS: dict[str, Method] = {
    "qdagger": QDAGGER,
    "kickstarting": Method("kickstarting", offline=None, online=DISTILL, uses_teacher_data=False),
    "jsrl": Method("jsrl", offline=None, online=None, online_lr="agent", uses_teacher_data=False),
    "pretrain": Method(
        "pretrain", offline=CQL, online=None, wean=False, online_lr="min", keep_optimizer=False
    ),
    "rehearsal": Method(
        "rehearsal",
        offline=CQL,
        online=None,
        wean=False,
        online_lr="min",
        keep_optimizer=False,
        rehearsal=True,
    ),
    "dqfd": Method("dqfd", offline=MARGIN, online=MARGIN, online_lr="max"),
    "finetune": Method(
        "finetune", offline=None, online=None, online_lr="min", uses_teacher_data=False, decay_epsilon=False
    ),
    "scratch": Method("scratch", offline=None, online=None, online_lr="agent", uses_teacher_data=False),
}


def method(name: str) -> Method:
    if name not in METHODS:
        raise AnewError(f"unknown reincarnation method {name!r}: choose one of {', '.join(METHODS)}")
    return METHODS[name]


# ---------------------------------------------------------------------- JSRL
class JSRLStudent(ReincarnatingStudent):
    """Jump-start RL: in training, the teacher acts for the first ``roll_in[i]`` steps of env i's episode."""

    def __init__(
        self,
        agent: Any,
        teacher: Any,
        config: ReincarnationConfig,
        num_envs: int,
        resuming_online: bool = False,
    ):
        super().__init__(agent, teacher, config, METHODS["jsrl"], resuming_online=resuming_online)
        if teacher is None:
            raise AnewError("jsrl needs a teacher to roll in; pass --teacher")
        self.max_roll_in = int(config.jsrl_max_roll_in)
        self.episode_step = np.zeros(num_envs, dtype=np.int64)
        self.roll_in = np.array([self.draw_roll_in() for _ in range(num_envs)], dtype=np.int64)

    def draw_roll_in(self) -> int:
        return int(self.agent.rng.integers(1, self.max_roll_in + 1)) if self.max_roll_in >= 1 else 0

    def act(
        self,
        obs: np.ndarray,
        explore: bool = True,
        rng: np.random.Generator | None = None,
        info: dict[str, Any] | None = None,
    ) -> np.ndarray:
        actions = super().act(obs, explore, rng)
        if explore:
            guided = self.episode_step < self.roll_in
            if guided.any():
                actions[guided] = self.teacher.act(obs[guided], explore=False)
        return actions

    def observe(self, batch: TransitionBatch) -> None:
        super().observe(batch)
        self.episode_step += 1
        for i in np.flatnonzero(np.asarray(batch.terminated) | np.asarray(batch.truncated)):
            self.episode_step[i] = 0
            self.roll_in[i] = self.draw_roll_in()

    def record_score(self, normalized_score: float, online_steps: int) -> None:
        super().record_score(normalized_score, online_steps)
        self.max_roll_in = int(self.max_roll_in * self.config.jsrl_roll_in_decay)

    def reincarnation_state(self) -> dict[str, Any]:
        return {
            **super().reincarnation_state(),
            "max_roll_in": self.max_roll_in,
            "episode_step": self.episode_step.tolist(),
            "roll_in": self.roll_in.tolist(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        saved = state.get("reincarnation") or {}
        if "max_roll_in" in saved:
            self.max_roll_in = int(saved["max_roll_in"])
            self.episode_step = np.array(saved["episode_step"], dtype=np.int64)
            self.roll_in = np.array(saved["roll_in"], dtype=np.int64)


# ---------------------------------------------------------------------- fine-tuning
def copy_parameters(tensors: Sequence[torch.Tensor], network: torch.nn.Module) -> None:
    """Copy ``tensors`` into ``network``'s parameters in order (torso, then head) when every shape agrees.

    Order, not names: an anew ``QNetwork`` (``head.weight``) and a Rainbow network without noise or dueling
    (``head.out.weight``) hold the same tensors under different names.
    """
    parameters = list(network.parameters())
    if len(parameters) != len(tensors) or any(p.shape != t.shape for p, t in zip(parameters, tensors)):
        raise AnewError(
            f"the networks differ: {[tuple(t.shape) for t in tensors]} cannot load into "
            f"{[tuple(p.shape) for p in parameters]}; the student must have the teacher's architecture "
            "(same agent, torso and hidden sizes)"
        )
    with torch.no_grad():
        for parameter, tensor in zip(parameters, tensors):
            parameter.copy_(tensor)


def reload_teacher_weights(agent: Any, teacher: Any) -> None:
    """Copy the teacher's network into the student's online and target nets (same architecture required)."""
    network = teacher.network  # a Dopamine wrapper holds the anew QNetwork
    network = network.network if isinstance(network, DopamineNetwork) else network
    copy_parameters([p.detach() for p in network.parameters()], agent.online)
    agent.sync_target()


def build_student(
    method_name: str,
    agent: Any,
    teacher: Any,
    config: ReincarnationConfig,
    teacher_data: Any = None,
    num_envs: int = 1,
    resuming_online: bool = False,
) -> Any:
    """The student for a method name (see the module docstring); ``scratch`` is the plain agent itself, with
    its own exploration schedule, so that tabula rasa means exactly ``anew train``. ``resuming_online``: the
    student of a run resumed in its online phase (its checkpoint then sets weights and schedule)."""
    chosen = method(method_name)
    if chosen.name == "scratch":
        return agent
    if chosen.name == "jsrl":
        return JSRLStudent(agent, teacher, config, num_envs, resuming_online)
    if chosen.name == "finetune" and not resuming_online:
        reload_teacher_weights(agent, teacher)
    data = teacher_data if chosen.uses_teacher_data else None
    return ReincarnatingStudent(agent, teacher, config, chosen, data, resuming_online)
