"""``anew train AGENT``: the training loop over a vector env (or a team of agents), with evaluation, logs and
checkpoints.

The loop is the whole story of a run: episode_start -> act -> env.step -> observe -> update, episode
statistics, evaluation every ``--eval-every`` agent steps (``eval.json``), checkpoints every
``--checkpoint-every``. A run may open with phases that take no env steps (offline pre-training, a
pipeline's stages): each checkpoint records the phase and its progress, so ``anew resume`` re-enters the
run exactly where it stopped, inside a phase or inside the loop (what a checkpoint holds and how it is read
back: :mod:`anew.runners.train_state`).
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from anew import __version__
from anew.agents.core import Phase, TransitionBatch
from anew.envs import final_next_obs
from anew.envs.atari import protocol
from anew.envs.multiagent import TeamVectorEnv
from anew.errors import AnewError
from anew.runners import registry
from anew.runners.evaluate import evaluate_agent, record_video
from anew.runners.loading import agent_spec, make_run_envs, resolve_device, set_threads
from anew.runners.logger import RunLogger
from anew.runners.run_args import RunArgs, check_run_args, env_protocol_for, parse_train_args
from anew.runners.run_dir import (
    config_document,
    eval_document,
    new_run_dir,
    seed_everything,
    write_json_atomic,
)
from anew.runners.train_state import RunState

AfterEvaluation = Callable[[int, list[float]], dict[str, Any]]


def crossed(before: int, after: int, every: int) -> bool:
    return every > 0 and before // every != after // every


class Trainer(RunState):
    """One run: builds envs and agent, runs its phases, then loops; ``resume_from`` re-enters at a checkpoint.

    ``agent``: a ready agent (a reincarnation student) instead of one built from ``agent_name``'s registry row;
    ``label``: eval.json's agent name; ``extra_config``: more sections of config.json; ``after_evaluation``:
    called with (step, returns) after each evaluation: its plain keys join that evaluation's ``extra``, its
    scalar names (``charts/x``) are logged. ``train(phases)`` runs the phases, then the env loop.
    """

    def __init__(
        self,
        agent_name: str,
        run: RunArgs,
        config: Any,
        run_dir: Path,
        resume_from: Path | None = None,
        agent: Any = None,
        label: str = "",
        extra_config: dict[str, Any] | None = None,
        after_evaluation: AfterEvaluation | None = None,
    ):
        self.agent_name, self.run, self.config, self.run_dir = agent_name, run, config, run_dir
        self.label = label or agent_name
        self.extra_config = dict(extra_config or {})
        self.after_evaluation = after_evaluation
        self.phases: tuple[Phase, ...] = ()
        check_run_args(run)
        registry.check_config(config)
        self.device = resolve_device(run.device)
        seed_everything(run.seed)
        self.envs = make_run_envs(run)
        self.team = isinstance(self.envs, TeamVectorEnv)
        registry.check_env_fits(agent_name, run.env_id, self.team)
        set_threads(run, self.envs.single_observation_space.shape)
        if agent is None:
            agent = registry.build_agent(
                agent_name, config, agent_spec(self.envs, run.num_envs, run.seed, self.device)
            )
        self.agent = agent
        curriculum = sorted(set(agent.env_options()) & set(run.env_kwargs))
        if curriculum:  # the agent changes these between training episodes: a fixed value would be ignored
            flags = ", ".join("--" + name.replace("_", "-") for name in curriculum)
            raise AnewError(
                f"{flags}: {agent_name}'s curriculum sets this during training and evaluation runs at its final "
                f"value; drop {flags}, or turn the curriculum off (commnet: --curriculum-end 0) to train at it"
            )
        self.step = 0
        self.last_checkpoint: Path | None = None  # written or resumed from: its replay blocks are shared
        self.phase_index, self.phase_progress = 0, 0  # the phase running now and its units done
        self.resumed_phase = ""  # the phase a restored checkpoint was written in
        self.evaluations: list[dict[str, Any]] = []
        self.episode_return = np.zeros(run.num_envs)
        self.episode_length = np.zeros(run.num_envs, dtype=np.int64)
        # Agents that learn rarely (PPO after each rollout) return losses on few steps: a log boundary
        # crossed without them logs the next losses the agent returns, at the step it returns them.
        self.losses_due = False
        self.obs, self.info = self.envs.reset(seed=run.seed)
        self.starting = np.ones(run.num_envs, dtype=bool)  # envs whose episode begins at the next act
        if resume_from is not None:
            self._restore(resume_from)
        in_phase = (
            (self.resumed_phase, self.phase_progress) if self.resumed_phase not in ("", "online") else None
        )
        self.logger = RunLogger(
            run_dir, run.total_steps, resume_step=self.step if resume_from else None, resume_phase=in_phase
        )

    # ------------------------------------------------------------------ config
    def resolved_config(self) -> dict[str, Any]:
        return config_document(__version__, self.agent_name, self.run, self.config, **self.extra_config)

    # ------------------------------------------------------------------ evaluation
    def evaluate(self) -> None:
        """One evaluation entry per option set of ``agent.evaluation_envs()`` (usually one), at this step."""
        for options in self.agent.evaluation_envs():
            self.evaluate_once(options)

    def evaluate_once(self, options: dict[str, Any]) -> None:
        # The episodes depend on the run's seed and the step alone, so --eval-every changes no final evaluation.
        eval_seed = int(np.random.SeedSequence([self.run.seed, 7_777, self.step]).generate_state(1)[0])
        env_kwargs = self.run.env_kwargs | options
        result = evaluate_agent(
            self.agent,
            self.run.env_id,
            self.run.eval_episodes,
            eval_seed,
            self.run.env_protocol,
            env_kwargs=env_kwargs,
            progress=self.evaluation_progress,
        )
        extra: dict[str, Any] = dict(result.extra) | options
        scalars = {f"eval/{name}": value for name, value in result.extra.items()}
        for name, value in (
            self.after_evaluation(self.step, result.returns) if self.after_evaluation else {}
        ).items():
            (scalars if "/" in name else extra)[name] = value  # "charts/x" names are logged, others recorded
        self.evaluations.append(
            {"step": self.step, "returns": result.returns, "lengths": result.lengths, "extra": extra}
        )
        write_json_atomic(
            self.run_dir / "eval.json",
            eval_document(
                self.label, self.run.env_id, self.run.seed, self.resolved_config(), self.evaluations
            ),
        )
        mean = float(np.mean(result.returns))
        suffix = "".join(
            f"_{key}{value}" for key, value in options.items()
        )  # eval/episodic_return_env_index15
        values = {
            f"eval/episodic_return{suffix}": mean,
            f"eval/episodic_length{suffix}": float(np.mean(result.lengths)),
        }
        self.logger.scalars(self.step, values | scalars)
        measures = "".join(f", {name} {value:.3f}" for name, value in result.extra.items())
        where = "".join(f" {key}={value}" for key, value in options.items())
        self.logger.message(
            f"[eval] step {self.step}{where}: mean return {mean:.2f} over {len(result.returns)} "
            f"episodes{measures}"
        )
        if self.run.capture_video:
            record_video(
                self.agent,
                self.run.env_id,
                self.run_dir / "videos" / f"eval_step_{self.step}{suffix}.gif",
                eval_seed,
                self.run.env_protocol,
                env_kwargs=env_kwargs,
            )

    def evaluation_progress(self, episodes_done: int, episodes: int, steps: int) -> None:
        self.logger.progress(self.step, f"evaluating: {episodes_done}/{episodes} episodes, {steps} steps")

    # ------------------------------------------------------------------ phases
    def run_phase(self, phase: Phase) -> None:
        log_every = max(self.run.log_every, 1)
        start, first = time.monotonic(), self.phase_progress
        for unit in range(first, phase.units):
            metrics = phase.work(unit)
            self.phase_progress = unit + 1
            if self.phase_progress % log_every == 0 or self.phase_progress == phase.units:
                self.logger.scalars(
                    self.phase_progress,
                    {phase.log_prefix + name.split("/")[-1]: value for name, value in metrics.items()},
                    phase=phase.name,
                )
                rate = (self.phase_progress - first) / max(time.monotonic() - start, 1e-9)
                self.logger.progress(
                    self.step, f"{phase.name} {self.phase_progress}/{phase.units} ({rate:.0f}/s)"
                )
            if crossed(unit, unit + 1, self.run.checkpoint_every) and self.phase_progress < phase.units:
                self.logger.flush()
                self.checkpoint()
        if phase.evaluate_at_end:  # the agent as the phase leaves it, before the switch to what follows
            self.evaluate()
        if phase.finish is not None:
            phase.finish()
        self.phase_index, self.phase_progress = self.phase_index + 1, 0
        self.logger.flush()
        self.checkpoint()

    # ------------------------------------------------------------------ the loop
    def train(self, phases: tuple[Phase, ...] | None = None, env_loop: bool = True) -> Path:
        """Run ``phases`` (default: the agent's own), then the env loop; ``env_loop=False`` ends with an evaluation
        and a checkpoint instead (a pipeline whose phases do all the work)."""
        self.phases = tuple(self.agent.phases(self.make_envs) if phases is None else phases)
        if self.resumed_phase == "online":
            self.phase_index = len(self.phases)
        elif self.resumed_phase and self.phase_name != self.resumed_phase:
            raise AnewError(
                f"the checkpoint was written in phase {self.resumed_phase!r}, which this run does not "
                f"have (phases: {[p.name for p in self.phases]}); resume it with the same command"
            )
        if self.step == 0 and self.phase_index == 0 and self.phase_progress == 0 and not self.resumed_phase:
            self.logger.hyperparameters(self.resolved_config())
            if self.run.env_protocol:
                self.logger.message(f"Atari protocol: {protocol(self.run.env_protocol).describe()}")
        try:
            while self.phase_index < len(self.phases):
                self.run_phase(self.phases[self.phase_index])
            if env_loop:
                self.online_loop()
            elif self.resumed_phase != "online" or not self.evaluations:
                self.evaluate()
                self.checkpoint()
        finally:  # a failed run's folder may be removed next: its log files must be closed first
            self.logger.close()
            self.envs.close()
        return self.run_dir

    def make_envs(self, num_envs: int, seed: int, **options: Any) -> Any:
        """The run's env id with other options: the factory phased agents step envs through."""
        return make_run_envs(self.run, num_envs=num_envs, seed=seed, env_kwargs=self.run.env_kwargs | options)

    def apply_env_options(self) -> None:
        options = self.agent.env_options()
        if options:
            if not self.team:
                raise AnewError(
                    f"{self.agent_name} sets env options {sorted(options)}, which {self.run.env_id} "
                    "cannot take between episodes"
                )
            self.envs.set_options(options)

    def online_loop(self) -> None:
        run, agent, envs = self.run, self.agent, self.envs
        start_time, start_step = time.monotonic(), self.step
        self.apply_env_options()
        while self.step < run.total_steps:
            if self.starting.any():
                agent.episode_start(self.starting, explore=True)
            actions = agent.act(self.obs, explore=True, info=self.info if self.team else None)
            next_obs, reward, terminated, truncated, info = envs.step(actions)
            done = terminated | truncated
            agent.observe(self.transition(actions, reward, terminated, truncated, next_obs, done, info))
            metrics = agent.update()
            self.apply_env_options()
            self.obs, self.info, self.starting = next_obs, info, done
            previous, self.step = self.step, self.step + run.num_envs
            self.episode_return += info["team_reward"] if self.team else reward
            self.episode_length += 1
            self.log_episodes(done, info)
            log_now = crossed(previous, self.step, run.log_every)
            self.losses_due = self.losses_due or log_now
            values: dict[str, float] = {}
            if self.losses_due and metrics:
                values, self.losses_due = dict(metrics), False
            if log_now:
                values.update(agent.diagnostics())
            if values:
                self.logger.scalars(self.step, values)
            if log_now:
                sps = (self.step - start_step) / max(time.monotonic() - start_time, 1e-9)
                self.logger.writer.add_scalar(
                    "charts/SPS", sps, self.step
                )  # wall-clock: not in metrics.jsonl
                self.logger.progress(self.step, f"SPS {sps:.0f}")
            final = self.step >= run.total_steps
            if crossed(previous, self.step, run.eval_every) or final:
                self.evaluate()
            if crossed(previous, self.step, run.checkpoint_every) or final:
                self.logger.flush()
                self.checkpoint()

    def transition(
        self,
        actions: np.ndarray,
        reward: np.ndarray,
        terminated: np.ndarray,
        truncated: np.ndarray,
        next_obs: np.ndarray,
        done: np.ndarray,
        info: dict[str, Any],
    ) -> TransitionBatch:
        real_next = final_next_obs(next_obs, done, info)
        if not self.team:
            return TransitionBatch(self.obs, actions, reward, terminated, truncated, real_next)
        extras = {k: v for k, v in self.info.items() if k != "active"} | {"team_reward": info["team_reward"]}
        return TransitionBatch(
            self.obs, actions, reward, terminated, truncated, real_next, self.info["active"], extras
        )

    def log_episodes(self, done: np.ndarray, info: dict[str, Any]) -> None:
        finished = np.flatnonzero(done)
        if self.team and len(finished):  # a batch of games ends together: one point, the mean over them
            values = {
                "charts/episodic_return": float(self.episode_return[finished].mean()),
                "charts/episodic_length": float(self.episode_length[finished].mean()),
            }
            for name, measure in info["final_metrics"].items():
                values[f"charts/{name}"] = float(np.asarray(measure)[finished].mean())
            self.logger.scalars(self.step, values)
        for i in finished if not self.team else ():
            self.logger.scalars(
                self.step,
                {
                    "charts/episodic_return": float(self.episode_return[i]),
                    "charts/episodic_length": float(self.episode_length[i]),
                },
            )
        self.episode_return[finished], self.episode_length[finished] = 0.0, 0


# ---------------------------------------------------------------------- command line
def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    agent_name, run, config = parse_train_args(argv)
    run = dataclasses.replace(run, env_protocol=env_protocol_for(run, run.preset))
    check_run_args(run)
    registry.check_config(config)
    with new_run_dir(run, agent_name) as run_dir:
        trainer = Trainer(agent_name, run, config, run_dir)
        write_json_atomic(run_dir / "config.json", trainer.resolved_config())
        trainer.logger.message(f"run directory: {run_dir}")  # above the progress bar, not on its line
        trainer.train(
            phases=registry.runner_phases(agent_name, trainer.agent, run),
            env_loop=registry.AGENTS[agent_name].env_loop,
        )
    final = trainer.evaluations[-1]
    print(
        f"done: {agent_name} on {run.env_id}, final mean eval return {np.mean(final['returns']):.2f}; "
        f"logs, checkpoints and eval.json in {run_dir}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
