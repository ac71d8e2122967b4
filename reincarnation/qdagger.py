"""QDagger (Agarwal et al., NeurIPS 2022): a value-based student learns TD + λ·KL(teacher ‖ student).

The recipe of google-research/reincarnating_rl (``qdagger_dqn.gin``):

1. **Offline phase** on teacher data: ``L = TD + λ₀ · mean_batch KL(softmax(Q_T/τ) ‖ softmax(Q_S/τ))`` with
   τ = 0.1 and λ₀ = 3.0 for DQN students (1.0 for Rainbow, distilling expected Q-values E[Z]); the target net
   is hard-copied every ``offline_target_update_every`` gradient steps; learning rate ``max_lr``.
2. **Switch**: copy online -> target, keep the Adam state, start on the student's own (empty) replay.
3. **Online phase**: the student's usual schedule (learning starts, update period, target period), the same
   loss on its own replay, teacher Q-values on the very same states.
4. **Weaning** after each evaluation: ``w ← max(1 − teacher-normalised score, 0)``, zero for good once it is
   zero or once more than ``wean_cutoff_steps`` online steps have passed; λ = λ₀·w and
   ``lr = max_lr·w + min_lr·(1 − w)``.

The student wraps an anew value-based agent by composition: it acts with the agent's network, stores in
its replay and steps its optimizer, and only replaces the loss. :class:`ReincarnatingStudent` is generic
over the teacher term (a :class:`Method` names it), so the baselines in ``baselines.py`` are small
variations of the same class. DQN students use Q-learning TD; students whose network has a C51 ``support``
(Rainbow) use the categorical TD loss and, online with prioritized replay, both terms are weighted by the
importance weights.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from anew.agents.core import AgentBase
from anew.agents.dqn import DQNAgent
from anew.agents.losses import distillation_loss, epsilon_greedy, linear_schedule
from anew.agents.replay import ReplaySample
from anew.errors import AnewError
from anew.reincarnation.teachers import Teacher, TransitionSource


@dataclass
class ReincarnationConfig:
    """QDagger and baseline settings; defaults are reincarnating_rl's Atari recipe (``qdagger_dqn.gin``)."""

    distill_coef: float = 0.0
    """λ₀, the weight of the teacher term at w = 1 (0: 3.0 for DQN students, 1.0 for Rainbow)."""
    temperature: float = 0.1
    """τ of softmax(Q/τ) in the distillation and CQL terms."""
    offline_steps: int = 1_000_000
    """Gradient steps on teacher data before the student acts (methods with an offline phase)."""
    offline_target_update_every: int = 2_000
    """Gradient steps between target-network copies in the offline phase."""
    offline_eval_every: int = 100_000
    """Gradient steps between evaluations in the offline phase (0: only at its end)."""
    max_lr: float = 1e-4
    """Learning rate at distillation weight w = 1 (and of the offline phase)."""
    min_lr: float = 1e-5
    """Learning rate once weaned (w = 0); also the fine-tuning rate of pretrain, rehearsal and finetune."""
    wean_cutoff_steps: int = 0
    """Online agent steps after which the teacher term is dropped for good (0: 1.5M DQN, 2.5M Rainbow)."""
    online_epsilon_decay_steps: int = 50_000
    """Exploration decays from the student's epsilon_start to epsilon_end over this many steps, counting offline
    gradient steps too and with no warm-up (reincarnating_rl), so after a long offline phase it starts at the end."""
    teacher_steps: int = 1_000_000
    """Teacher agent steps to collect when no --teacher-replay is given (methods that use teacher data)."""
    teacher_epsilon: float = 0.01
    """Exploration of the teacher while it collects data."""
    cql_coef: float = 1.0
    """Weight of the CQL term of the offline pre-training baseline."""
    margin: float = 1.0
    """Margin l of DQfD's large-margin loss."""
    margin_coef: float = 1.0
    """Weight of DQfD's large-margin term (weaned like QDagger's)."""
    dqfd_max_margin: bool = False
    """DQfD's max_a form; default False is reincarnating_rl's mean over (s, a) of the hinge."""
    rehearsal_ratio: float = 0.25
    """Rehearsal: fraction of each online batch drawn from the teacher data."""
    jsrl_max_roll_in: int = 100
    """JSRL: the teacher acts for the first U{1..H} steps of each training episode, H starting here."""
    jsrl_roll_in_decay: float = 0.8
    """JSRL: H is multiplied by this after every evaluation."""


PRESETS: dict[str, ReincarnationConfig] = {
    "dopamine": ReincarnationConfig(),
    # CPU scale (CartPole, MinAtar) for students on the classic-control DQN preset: its bursts of 128 gradient
    # steps every 256 agent steps, a larger learning rate, and budgets in the tens of thousands.
    "classic-control": ReincarnationConfig(
        offline_steps=4_000,
        offline_target_update_every=128,
        offline_eval_every=0,
        max_lr=1e-3,
        min_lr=1e-4,
        wean_cutoff_steps=50_000,
        online_epsilon_decay_steps=1_000,
        teacher_steps=10_000,
        teacher_epsilon=0.05,
    ),
}


# ---------------------------------------------------------------------- the schedule (pure)
def teacher_normalized_score(student_return: float, teacher_return: float, random_return: float) -> float:
    """``(student − random) / (teacher − random)``: 1.0 exactly at the teacher's return, so weaning can reach 0.

    reincarnating_rl adds 1e-8 to the denominator, which leaves w ≈ 1e-11 instead of 0 at the teacher's return;
    here the 1e-8 only guards a teacher no better than random.
    """
    gap = teacher_return - random_return
    return (student_return - random_return) / (gap if abs(gap) > 1e-8 else 1e-8)


def weaned_weight(weight: float, normalized_score: float, online_steps: int, cutoff_steps: int) -> float:
    """The distillation multiplier after an evaluation: ``max(1 − score, 0)`` while it is positive, 0 for good
    once it has reached 0 or once more than ``cutoff_steps`` online steps have passed."""
    if weight <= 0.0 or online_steps > cutoff_steps:
        return 0.0
    return max(1.0 - normalized_score, 0.0)


def tied_learning_rate(weight: float, max_lr: float, min_lr: float) -> float:
    """``max_lr·w + min_lr·(1 − w)``: 1e-4 while distilling, 1e-5 once weaned at Atari scale."""
    return weight * max_lr + (1.0 - weight) * min_lr


# ---------------------------------------------------------------------- the method
AuxLoss = Callable[[torch.Tensor, torch.Tensor, "torch.Tensor | None", ReincarnationConfig], torch.Tensor]


@dataclass(frozen=True)
class TeacherTerm:
    """An auxiliary loss tying the student to the teacher: per-sample values from (student Q (B, A),
    actions (B,), teacher Q (B, A) or None, config); ``coef`` names the config field weighting it."""

    name: str
    loss: AuxLoss
    coef: str
    needs_teacher: bool = True


def distill_term_loss(
    student_q: torch.Tensor,
    actions: torch.Tensor,
    teacher_q: torch.Tensor | None,
    config: ReincarnationConfig,
) -> torch.Tensor:
    assert teacher_q is not None
    return distillation_loss(student_q, teacher_q, config.temperature)


DISTILL = TeacherTerm("distill", distill_term_loss, "distill_coef")


@dataclass(frozen=True)
class Method:
    """What a reincarnation method changes in the student's training.

    ``offline``/``online``: the teacher term of each phase (None: no offline phase / plain TD online).
    ``wean``: scale the online term by the weaning multiplier w. ``online_lr``: "tied" (follows w),
    "max"/"min" (``max_lr``/``min_lr``) or "agent" (the student's own lr). ``keep_optimizer``: keep the
    Adam state at the switch. ``rehearsal``: mix teacher data into online batches. ``decay_epsilon``: False
    acts at the student's epsilon_end from the first step (a reloaded, already trained network).
    """

    name: str
    offline: TeacherTerm | None
    online: TeacherTerm | None
    wean: bool = True
    online_lr: str = "tied"
    keep_optimizer: bool = True
    rehearsal: bool = False
    uses_teacher_data: bool = True
    decay_epsilon: bool = True


QDAGGER = Method("qdagger", offline=DISTILL, online=DISTILL)


# ---------------------------------------------------------------------- rehearsal batches
def concat_samples(first: ReplaySample, second: ReplaySample) -> ReplaySample:
    """One batch of both samples' transitions (rehearsal); ``second``'s indices become -1 (not in the replay)."""
    return ReplaySample(
        obs=np.concatenate([first.obs, second.obs]),
        action=np.concatenate([first.action, second.action.astype(first.action.dtype)]),
        reward=np.concatenate([first.reward, second.reward]),
        discount=np.concatenate([first.discount, second.discount]),
        next_obs=np.concatenate([first.next_obs, second.next_obs]),
        indices=np.concatenate([first.indices, np.full(len(second.action), -1, dtype=first.indices.dtype)]),
        weights=np.concatenate([first.weights, np.ones(len(second.action), dtype=first.weights.dtype)]),
    )


# ---------------------------------------------------------------------- the student
class ReincarnatingStudent(AgentBase):
    """A value-based anew agent (DQN, Rainbow) trained with a teacher term, in an offline then an online phase.

    Implements the runner's Agent protocol (``act``, ``observe``, ``update``, ``state_dict``) for the online
    phase; ``offline_update`` is one gradient step of the offline phase, ``start_online`` the switch and
    ``record_score`` the weaning after an evaluation. ``state_dict`` is the wrapped agent's plus a
    ``reincarnation`` entry, so a checkpoint loads back as the plain agent (``anew evaluate``).
    """

    def __init__(
        self,
        agent: Any,
        teacher: Teacher | None,
        config: ReincarnationConfig,
        method: Method = QDAGGER,
        teacher_data: TransitionSource | None = None,
        resuming_online: bool = False,
    ):
        if not isinstance(agent, DQNAgent):
            raise AnewError(
                f"{type(agent).__name__} is not a value-based anew agent; students must be dqn or rainbow"
            )
        needs_teacher = any(
            term is not None and term.needs_teacher for term in (method.offline, method.online)
        )
        if needs_teacher and teacher is None:
            raise AnewError(f"{method.name} needs a teacher; pass --teacher")
        # A run resumed in its online phase needs teacher data only if it keeps rehearsing it.
        offline = method.offline is not None and not resuming_online
        if (offline or method.rehearsal) and teacher_data is None:
            raise AnewError(
                f"{method.name} trains on teacher data; give a teacher replay or let it be collected"
            )
        self.agent, self.teacher, self.method, self.teacher_data = agent, teacher, method, teacher_data
        distributional = agent.distributional
        self.config = dataclasses.replace(
            config,
            distill_coef=config.distill_coef or (1.0 if distributional else 3.0),
            wean_cutoff_steps=config.wean_cutoff_steps or (2_500_000 if distributional else 1_500_000),
        )
        self.phase = "offline" if offline else "online"
        self.weight = 1.0  # w, the weaning multiplier of the teacher term
        self.offline_updates = 0
        self.set_learning_rate(self.config.max_lr if self.phase == "offline" else self.online_learning_rate())

    # ------------------------------------------------------------------ schedule
    @property
    def term(self) -> TeacherTerm | None:
        return self.method.offline if self.phase == "offline" else self.method.online

    @property
    def coefficient(self) -> float:
        """The current weight of the teacher term (λ = λ₀·w for weaned terms)."""
        term = self.term
        if term is None:
            return 0.0
        weaned = self.phase == "online" and self.method.wean
        return getattr(self.config, term.coef) * (self.weight if weaned else 1.0)

    def online_learning_rate(self) -> float:
        c, choice = self.config, self.method.online_lr
        if choice == "tied":
            return tied_learning_rate(self.weight, c.max_lr, c.min_lr)
        return {"max": c.max_lr, "min": c.min_lr, "agent": self.agent.config.lr}[choice]

    def set_learning_rate(self, lr: float) -> None:
        self.agent.set_learning_rate(lr)

    @property
    def learning_rate(self) -> float:
        return self.agent.learning_rate

    def record_score(self, normalized_score: float, online_steps: int) -> None:
        """Weaning after an online evaluation: update w, then the tied learning rate."""
        if self.phase != "online":
            return
        self.weight = weaned_weight(
            self.weight, normalized_score, online_steps, self.config.wean_cutoff_steps
        )
        self.set_learning_rate(self.online_learning_rate())

    def start_online(self) -> None:
        """The switch: target <- online; keep (QDagger) or reset (pre-training baselines) the optimizer."""
        self.agent.sync_target()
        if not self.method.keep_optimizer:
            self.agent.reset_optimizer()
        self.phase = "online"
        self.set_learning_rate(self.online_learning_rate())

    # ------------------------------------------------------------------ acting
    @property
    def epsilon(self) -> float:
        c = self.agent.config
        if self.agent.explores_by_noise:
            return 0.0  # noisy networks explore by themselves (Dopamine's zero_epsilon)
        if not self.method.decay_epsilon:
            return c.epsilon_end
        steps = self.offline_updates + self.agent.steps
        return linear_schedule(steps, c.epsilon_start, c.epsilon_end, self.config.online_epsilon_decay_steps)

    def diagnostics(self) -> dict[str, float]:
        return {"charts/epsilon": self.epsilon}

    def episode_start(self, mask: np.ndarray, explore: bool = True) -> None:
        self.agent.episode_start(mask, explore)

    def act(
        self,
        obs: np.ndarray,
        explore: bool = True,
        rng: np.random.Generator | None = None,
        info: dict[str, Any] | None = None,
    ) -> np.ndarray:
        """The agent's own evaluation policy (and noisy exploration); epsilon-greedy on the student's schedule."""
        agent = self.agent
        if not explore or agent.explores_by_noise:
            return agent.act(obs, explore, rng)
        return epsilon_greedy(agent.greedy_actions(obs), self.epsilon, agent.num_actions, rng or agent.rng)

    def observe(self, batch: Any) -> None:
        self.agent.observe(batch)

    # ------------------------------------------------------------------ learning
    def offline_update(self) -> dict[str, float]:
        """One gradient step of the offline phase on teacher data (and the target copy when due)."""
        if self.phase != "offline":
            raise RuntimeError("offline_update after the switch to the online phase")
        assert self.teacher_data is not None
        sample = self.teacher_data.sample(self.agent.config.batch_size)
        metrics = self.agent.learn_on(sample, self.teacher_loss, own_replay=False)
        self.offline_updates += 1
        if self.offline_updates % max(self.config.offline_target_update_every, 1) == 0:
            self.agent.sync_target()
        return metrics

    def update(self) -> dict[str, float]:
        """The wrapped agent's own schedule (``DQNAgent.update``) with the teacher term and the student's batches."""
        if self.phase != "online":
            raise RuntimeError("call start_online() before online updates")
        return self.agent.update(self.online_batch, self.teacher_loss, follow_lr_schedule=False)

    def online_batch(self) -> ReplaySample:
        agent = self.agent
        batch_size = agent.config.batch_size
        if not self.method.rehearsal:
            return agent.sample_batch(batch_size)
        assert self.teacher_data is not None
        from_teacher = int(agent.rng.binomial(batch_size, self.config.rehearsal_ratio))
        own = agent.sample_batch(batch_size - from_teacher)
        return concat_samples(own, self.teacher_data.sample(from_teacher)) if from_teacher else own

    def teacher_loss(
        self, sample: ReplaySample, q_values: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """coefficient · the teacher term, weighted by the sample's importance weights (the DQN loss hook)."""
        term, coefficient = self.term, self.coefficient
        metrics = {"charts/distill_coeff": coefficient}
        if term is None or coefficient <= 0:  # skipped at λ = 0, as reincarnating_rl does
            return torch.zeros((), device=q_values.device), metrics
        device = q_values.device
        action = torch.as_tensor(sample.action, device=device).long()
        weights = torch.as_tensor(sample.weights, device=device)
        teacher_q = self.teacher.q_values(sample.obs).to(device) if term.needs_teacher else None
        per_sample = term.loss(q_values, action, teacher_q, self.config)
        metrics[f"losses/{term.name}_loss"] = float(per_sample.detach().mean())
        return coefficient * (weights * per_sample).mean(), metrics

    # ------------------------------------------------------------------ state
    def reincarnation_state(self) -> dict[str, Any]:
        state = {
            "method": self.method.name,
            "phase": self.phase,
            "weight": self.weight,
            "offline_updates": self.offline_updates,
            "lr": self.learning_rate,
        }
        if self.teacher_data is not None and (
            self.phase == "offline" or self.method.rehearsal
        ):  # their batches
            state["teacher_data_rng"] = self.teacher_data.rng.bit_generator.state
        if self.teacher is not None:  # its epsilon-random actions (JSRL's roll-in) draw from it
            state["teacher_rng"] = self.teacher.rng.bit_generator.state
        return state

    def state_dict(self) -> dict[str, Any]:
        return {**self.agent.state_dict(), "reincarnation": self.reincarnation_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.agent.load_state_dict(state)
        saved = state.get("reincarnation")
        if saved:
            self.phase, self.weight = saved["phase"], float(saved["weight"])
            self.offline_updates = int(saved["offline_updates"])
            self.set_learning_rate(float(saved["lr"]))
            if self.teacher_data is not None and "teacher_data_rng" in saved:
                self.teacher_data.rng.bit_generator.state = saved["teacher_data_rng"]
            if self.teacher is not None and "teacher_rng" in saved:
                self.teacher.rng.bit_generator.state = saved["teacher_rng"]

    # The runner's checkpoints save the student's replay through this attribute.
    @property
    def replay(self) -> Any:
        return self.agent.replay
