"""PD-VF phase (a) and the PPO baselines: anew's PPO trained on one env (or env pool) after another.

Each unit of work is one PPO iteration (``num_steps`` vector steps of ``num_envs`` envs, then the update), so
a killed run resumes inside a policy: the state holds the finished policies, the PPO agent being trained and
its vector env (``SeededVectorEnv.state_dict``: episode counters and the actions of the running episodes).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from anew.agents.core import AgentSpec, EnvFactory, TransitionBatch
from anew.agents.pdvf.rollouts import _final_obs, episode_seed, play_in
from anew.agents.ppo import PPOAgent, PPOConfig
from anew.errors import AnewError


@dataclass(frozen=True)
class PolicyJob:
    """One policy to train: the env options of its training envs and its budget of env steps."""

    options: dict[str, Any]
    steps: int


@dataclass(frozen=True)
class LearningSignal:
    """What PPO learns from, when it differs from the env's own reward and time limit (evaluation never does).

    ``log_scale`` s > 0: PPO learns from 1 + log(r) / s on steps with r > 0 (0 elsewhere). Spaceship pays
    exp(-3 d) once, at the end; far from the door that is ~1e-7, below what the critic resolves, and PPO
    stalls in many seeds. With s = 15 it learns from 1 - d / 5: the same order of final distances, at a scale
    PPO learns from, positive near the door (so ending sooner is never what is rewarded).
    ``timeout_terminal``: the time limit ends bootstrapping too. Spaceship's 50-step limit is part of the task
    and the time is not observed (the reference's env reports it as a plain ``done``); bootstrapping there
    values timing out near the door as if the episode went on, and PPO learns to hover.
    """

    log_scale: float = 0.0
    timeout_terminal: bool = False

    def reward(self, reward: np.ndarray) -> np.ndarray:
        if self.log_scale <= 0:
            return reward
        reward = np.asarray(reward, np.float64)
        return np.where(reward > 0, 1.0 + np.log(np.maximum(reward, 1e-300)) / self.log_scale, 0.0)

    def ends(self, terminated: np.ndarray, truncated: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(terminated, truncated) as PPO sees them."""
        if not self.timeout_terminal:
            return terminated, truncated
        return np.asarray(terminated) | np.asarray(truncated), np.zeros_like(np.asarray(truncated))


class _LiveRun:
    """The policy being trained now: its PPO agent, vector env, current observations and episode returns."""

    def __init__(
        self,
        agent: PPOAgent,
        envs: Any,
        obs: np.ndarray,
        running: np.ndarray,
        signal: LearningSignal,
        returns: list[float] | None = None,
    ):
        self.agent, self.envs, self.obs, self.running, self.signal = agent, envs, obs, running, signal
        self.returns = returns or []  # mean episode return of each iteration so far (nan: none ended)

    def iteration(self) -> dict[str, float]:
        """``num_steps`` vector steps and the PPO update they fill."""
        agent, finished, metrics = self.agent, [], {}
        for _ in range(agent.config.num_steps):
            actions = agent.act(self.obs)
            next_obs, reward, terminated, truncated, info = self.envs.step(actions)
            done = np.asarray(terminated) | np.asarray(truncated)
            real_next = _final_obs(next_obs, done, info)
            ends = self.signal.ends(terminated, truncated)
            agent.observe(TransitionBatch(self.obs, actions, self.signal.reward(reward), *ends, real_next))
            metrics = agent.update() or metrics
            self.running += reward
            finished += self.running[done].tolist()
            self.running[done] = 0.0
            self.obs = next_obs
        self.returns.append(float(np.mean(finished)) if finished else float("nan"))
        if finished:
            metrics["charts/episodic_return"] = self.returns[-1]
        return metrics

    def score(self) -> float:
        """Mean training return over the last quarter of the iterations (what picks among seeds)."""
        late = np.array(self.returns[-max(1, len(self.returns) // 4) :])
        return float(np.nanmean(late)) if np.isfinite(late).any() else float("-inf")

    def state_dict(self) -> dict[str, Any]:
        return {
            "agent": self.agent.state_dict(),
            "envs": self.envs.state_dict(),
            "obs": torch.as_tensor(np.asarray(self.obs)),
            "running": torch.as_tensor(self.running),
            "returns": list(self.returns),
        }


class PolicyTraining:
    """Trains ``jobs`` one after another with PPO, one iteration per unit (see the module docstring).

    A policy whose score stays below ``retry_below`` trains again from a new seed, up to ``tries`` seeds, and
    the best-scoring one is kept: PPO on Spaceship at this budget falls into a local optimum (hovering by the
    start) in about one seed in five. The units of tries not needed are skipped. The score is the mean return
    of ``score_episodes`` deterministic episodes in the job's envs (how the policy will be used: a stochastic
    training return hid policies that stall when acting deterministically), or with ``score_episodes`` 0 the
    training return of the last quarter of the iterations (``_LiveRun.score``). Each kept policy's score is in
    ``scores``; :meth:`probe_indices` names those that reached ``retry_below``.
    """

    def __init__(
        self,
        ppo_config: PPOConfig,
        spec: AgentSpec,
        jobs: list[PolicyJob],
        num_envs: int,
        seed: int,
        signal: LearningSignal = LearningSignal(),
        tries: int = 1,
        retry_below: float = 0.0,
        score_episodes: int = 0,
        max_episode_steps: int = 1_000,
    ):
        self.ppo_config, self.spec, self.jobs, self.signal = ppo_config, spec, jobs, signal
        self.num_envs, self.seed, self.tries, self.retry_below = num_envs, seed, tries, retry_below
        self.per_iteration = ppo_config.num_steps * num_envs
        self.iterations = [max(1, math.ceil(job.steps / self.per_iteration)) for job in jobs]
        self.score_episodes, self.max_episode_steps = score_episodes, max_episode_steps
        self.finished: list[dict[str, Any]] = []  # PPO state dicts of the trained policies, in job order
        self.scores: list[float] = []  # the score of each finished policy
        self.candidate: dict[str, Any] | None = None  # the best try of the current job: {"score", "agent"}
        self.live: _LiveRun | None = None
        self.saved_live: dict[str, Any] | None = None  # a restored live run, rebuilt at the next unit

    @property
    def units(self) -> int:
        return sum(self.iterations) * self.tries

    def locate(self, unit: int) -> tuple[int, int, int]:
        """(job, try, iteration within the try) of a unit."""
        for job, count in enumerate(self.iterations):
            if unit < count * self.tries:
                return job, unit // count, unit % count
            unit -= count * self.tries
        raise AnewError(f"PPO phase has {self.units} units; unit {unit} is past its end")

    def new_agent(self, job: int, attempt: int = 0) -> PPOAgent:
        config = dataclasses.replace(self.ppo_config, anneal_steps=self.iterations[job] * self.per_iteration)
        seed = episode_seed(self.seed, 101, job, attempt) % 2**31
        spec = AgentSpec(
            self.spec.observation_space, self.spec.action_space, self.num_envs, seed, self.spec.device
        )
        return PPOAgent(config, spec)

    def _open(self, job: int, attempt: int, iteration: int, make_envs: EnvFactory) -> _LiveRun:
        env_seed = episode_seed(self.seed, 102, job, attempt)
        envs = make_envs(self.num_envs, env_seed, **self.jobs[job].options)
        agent = self.new_agent(job, attempt)
        if iteration == 0:
            obs, _ = envs.reset(seed=env_seed)
            return _LiveRun(agent, envs, obs, np.zeros(self.num_envs), self.signal)
        saved, self.saved_live = self.saved_live, None
        if saved is None or not hasattr(envs, "load_state_dict"):
            raise AnewError(
                "PPO phase cannot resume mid-policy: its env state is missing or the env cannot restore "
                "it; start the run again"
            )
        agent.load_state_dict(saved["agent"])
        envs.load_state_dict(saved["envs"])
        running = saved["running"].numpy().astype(np.float64)
        return _LiveRun(agent, envs, saved["obs"].numpy(), running, self.signal, list(saved["returns"]))

    def work(self, unit: int, make_envs: EnvFactory) -> dict[str, float]:
        job, attempt, iteration = self.locate(unit)
        if len(self.finished) > job:  # an earlier try was good enough
            return {"charts/policy": float(job)}
        if self.live is None:
            self.live = self._open(job, attempt, iteration, make_envs)
        metrics = self.live.iteration()
        metrics["charts/policy"] = float(job)
        if iteration == self.iterations[job] - 1:
            score = self.score(job, attempt, make_envs)
            metrics["charts/final_return"] = score
            if self.candidate is None or score > self.candidate["score"]:
                self.candidate = {"score": score, "agent": self.live.agent.state_dict(), "try": attempt}
            self.live.envs.close()
            self.live = None
            if score >= self.retry_below or attempt == self.tries - 1:
                self.finished.append(self.candidate["agent"])
                self.scores.append(float(self.candidate["score"]))
                self.candidate = None
        return metrics

    def score(self, job: int, attempt: int, make_envs: EnvFactory) -> float:
        """The live policy's score (see the class docstring)."""
        assert self.live is not None
        if self.score_episodes <= 0:
            return self.live.score()
        agent = self.live.agent
        seed = episode_seed(self.seed, 103, job, attempt)
        played = play_in(make_envs, self.score_episodes, seed, lambda obs: agent.act(obs, explore=False),
                         self.max_episode_steps, **self.jobs[job].options)  # fmt: skip
        return float(played.returns(1.0).mean())

    def probe_indices(self) -> list[int]:
        """The finished policies whose score reached ``retry_below`` (all of them if none did)."""
        good = [i for i, score in enumerate(self.scores) if score >= self.retry_below]
        return good or list(range(len(self.finished)))

    def policies(self) -> list[PPOAgent]:
        """The finished policies as PPO agents (for deterministic acting)."""
        agents = []
        for job, state in enumerate(self.finished):
            agent = self.new_agent(job)
            agent.load_state_dict(state)
            agents.append(agent)
        return agents

    def state_dict(self) -> dict[str, Any]:
        live = self.live.state_dict() if self.live is not None else self.saved_live
        return {"finished": list(self.finished), "scores": list(self.scores), "candidate": self.candidate,
                "live": live}  # fmt: skip

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.finished, self.candidate = list(state["finished"]), state["candidate"]
        self.scores = [float(v) for v in state.get("scores", [float("inf")] * len(self.finished))]
        if self.live is not None:
            self.live.envs.close()
        self.live, self.saved_live = None, state["live"]
