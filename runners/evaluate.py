"""Evaluation: play whole episodes with the agent's evaluation policy; ``anew evaluate CHECKPOINT``.

Evaluation never changes training: actions draw from a generator seeded by the evaluation's seed (passed to
``act``), torch's global RNG is forked around it, and agents keep their evaluation per-episode state apart
(``episode_start(mask, explore=False)``). Changing ``--eval-every`` leaves a training run bit-identical.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import torch
import tyro

from anew.agents.core import AgentBase
from anew.envs import is_multiagent, make_env, make_team_env, make_vector_env
from anew.envs.vector import EPISODE_INFO
from anew.errors import AnewError
from anew.runners.loading import load_agent_from_checkpoint
from anew.runners.run_args import env_options

EvaluationProgress = Callable[[int, int, int], None]  # (episodes done, episodes, env steps)


@dataclass
class Evaluation:
    """Per-episode returns and lengths (in episode order), and the game's own measures averaged over episodes
    (``success_rate``, … for multi-agent worlds; for Gymnasium envs what their last step's info reports in
    ``episode_measures``, with a standard error ``<name>_se``, and ``episode_references``)."""

    returns: list[float]
    lengths: list[int]
    extra: dict[str, float]


def evaluate_agent(
    agent: Any,
    env_id: str,
    episodes: int,
    seed: int,
    env_protocol: str = "",
    max_parallel: int = 8,
    env_kwargs: dict[str, Any] | None = None,
    progress: EvaluationProgress | None = None,
) -> Evaluation:
    """Play ``episodes`` episodes in up to ``max_parallel`` envs at once (a whole batch of games for
    multi-agent worlds, whose team return is the episode's return). ``progress(episodes done, episodes, env
    steps)`` is called as episodes end and every 1,000 steps (long Atari episodes are not silent).

    Each env plays a fixed quota of episodes (not "first N to finish", which would favour short
    episodes); episode seeds derive from ``seed`` so the same seed replays the same episodes.
    """
    team = is_multiagent(env_id)
    num_envs = max(1, min(episodes, 512 if team else max_parallel))
    quota = np.array([episodes // num_envs + (i < episodes % num_envs) for i in range(num_envs)])
    if team:
        envs = make_team_env(env_id, num_envs, seed, **(env_kwargs or {}))
    else:
        envs = make_vector_env(
            env_id, num_envs, seed=seed, env_protocol=env_protocol, training=False, env_kwargs=env_kwargs
        )
    rng = np.random.default_rng(seed)
    running_return, running_length = np.zeros(num_envs), np.zeros(num_envs, dtype=int)
    finished = np.zeros(num_envs, dtype=int)
    returns: list[list[float]] = [[] for _ in range(num_envs)]
    lengths: list[list[int]] = [[] for _ in range(num_envs)]
    measures: dict[str, list[list[float]]] = {}
    flags: set[str] = set()  # yes/no measures, reported as rates
    reported: dict[str, dict[str, list[float]]] = {key: {} for key in EPISODE_INFO}  # Gymnasium envs' own
    steps = 0
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        obs, info = envs.reset(seed=seed)
        agent.episode_start(np.ones(num_envs, dtype=bool), explore=False)
        while (finished < quota).any():
            actions = agent.act(obs, explore=False, rng=rng, info=info if team else None)
            obs, reward, terminated, truncated, info = envs.step(actions)
            running_return += info["team_reward"] if team else reward
            running_length += 1
            done = terminated | truncated
            for i in np.flatnonzero(done):
                if finished[i] < quota[i]:
                    returns[i].append(float(running_return[i]))
                    lengths[i].append(int(running_length[i]))
                    for name, values in info.get("final_metrics", {}).items():
                        measures.setdefault(name, [[] for _ in range(num_envs)])[i].append(float(values[i]))
                        if np.asarray(values).dtype == bool:
                            flags.add(name)
                    for key, table in reported.items():
                        for name, values in info.get(key, {}).items():
                            table.setdefault(name, []).append(float(values[i]))
                    finished[i] += 1
                running_return[i], running_length[i] = 0.0, 0
            if done.any():
                agent.episode_start(done, explore=False)
            steps += 1
            if progress is not None and (done.any() or steps % 1_000 == 0):
                progress(int(finished.sum()), episodes, steps)
    envs.close()
    order = [(i, k) for k in range(int(quota.max())) for i in range(num_envs) if k < quota[i]]
    # ``success`` -> ``success_rate`` for yes/no measures, ``n_collisions`` -> ``mean_n_collisions``
    extra = {
        (f"{name}_rate" if name in flags else f"mean_{name}"): float(
            np.mean([per_env[i][k] for i, k in order])
        )
        for name, per_env in measures.items()
    }
    for name, values in reported["episode_measures"].items():
        extra[name] = float(np.mean(values))
        if len(values) > 1:
            extra[f"{name}_se"] = float(np.std(values, ddof=1) / np.sqrt(len(values)))
    extra |= {name: float(np.mean(values)) for name, values in reported["episode_references"].items()}
    if isinstance(agent, AgentBase):  # a bare policy (act, episode_start) measures nothing of itself
        extra |= agent.evaluation_measures()  # SOM: its inference accuracy over this evaluation
    return Evaluation([returns[i][k] for i, k in order], [lengths[i][k] for i, k in order], extra)


def record_video(
    agent: Any,
    env_id: str,
    path: Path,
    seed: int,
    env_protocol: str = "",
    max_frames: int = 5_000,
    env_kwargs: dict[str, Any] | None = None,
) -> Path:
    """Play one evaluation episode and save it as an animated GIF (no video codec needed)."""
    import gymnasium as gym
    from PIL import Image

    # Frames are drawn off screen and anew plays no sound: without SDL's dummy drivers, pygame's probe for a
    # display or an audio server prints an "XDG_RUNTIME_DIR is invalid" error (the GIFs are fine either way).
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    os.environ.setdefault("SDL_AUDIODRIVER", "dummy")

    rng = np.random.default_rng(seed)
    team = is_multiagent(env_id)
    try:
        if team:
            env = make_team_env(env_id, 1, seed, **(env_kwargs or {}))
            obs, info = env.reset(seed=seed)
        else:
            env = make_env(
                env_id, env_protocol, training=False, render_mode="rgb_array", **(env_kwargs or {})
            )
            (obs, _), info = env.reset(seed=seed), None
        first = env.render()
    except gym.error.DependencyNotInstalled as error:
        raise AnewError(f"--capture-video cannot render {env_id}: {error}") from error
    frames, done = [first], False
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        agent.episode_start(np.ones(1, dtype=bool), explore=False)
        while not done and len(frames) < max_frames:
            if team:  # the game resets inside its last step: the final frame is the new game's first
                obs, _, terminated, truncated, info = env.step(
                    agent.act(obs, explore=False, rng=rng, info=info)
                )
                done = bool((terminated | truncated)[0])
            else:
                obs, _, terminated, truncated, _ = env.step(agent.act(obs[None], explore=False, rng=rng)[0])
                done = terminated or truncated
            frames.append(env.render())
    env.close()
    path.parent.mkdir(parents=True, exist_ok=True)
    images = [Image.fromarray(np.asarray(frame)) for frame in frames if frame is not None]
    fps = env.metadata.get("render_fps", 30)
    images[0].save(path, save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0)
    return path


def terminal_progress(label: str) -> EvaluationProgress:
    """Evaluation progress on stderr: a bar on a terminal, else a line every 30 s (as training shows it)."""
    state: dict[str, Any] = {"bar": None, "last": time.monotonic()}

    def show(done: int, episodes: int, steps: int) -> None:
        if sys.stderr.isatty():
            if state["bar"] is None:
                from tqdm import tqdm

                state["bar"] = tqdm(
                    total=episodes, desc=label, unit="episode", leave=False, dynamic_ncols=True
                )
            state["bar"].n = done
            state["bar"].set_postfix_str(f"{steps} steps", refresh=False)
            state["bar"].refresh()
            if done >= episodes:
                state["bar"].close()
        elif time.monotonic() - state["last"] > 30:
            print(f"{label}: {done}/{episodes} episodes, {steps} steps", file=sys.stderr, flush=True)
            state["last"] = time.monotonic()

    return show


@dataclass
class EvaluateArgs:
    """Evaluate a saved agent: ``anew evaluate RUN_DIR_OR_CHECKPOINT --episodes 20`` (other --key value flags
    are env options, as in ``anew train``: ``--p-arrive 0.3``)."""

    checkpoint: Annotated[str, tyro.conf.Positional]
    """A run directory (its newest checkpoint is used) or a checkpoints/step_* folder."""
    episodes: int = 10
    """Number of evaluation episodes."""
    seed: int = 12345
    """Seed of the evaluation episodes."""
    env_id: str = ""
    """Evaluate on another env id than the one trained on (same spaces required)."""
    json_out: str = ""
    """Also write the returns as JSON to this path."""
    capture_video: bool = False
    """Save one episode as a GIF beside the checkpoint."""


def main(argv: list[str] | None = None) -> int:
    args, unknown = tyro.cli(EvaluateArgs, args=argv, prog="anew evaluate", return_unknown_args=True)
    if args.episodes < 1:
        raise AnewError(f"--episodes must be at least 1 (got {args.episodes})")
    agent, runner_state, path = load_agent_from_checkpoint(args.checkpoint, threads=True)
    env_id = args.env_id or runner_state["env_id"]
    protocol = runner_state["run"].get("env_protocol", "")
    known = list(EvaluateArgs.__dataclass_fields__)
    env_kwargs = {**runner_state["run"].get("env_kwargs", {}), **env_options(unknown, known)}
    result = evaluate_agent(
        agent,
        env_id,
        args.episodes,
        args.seed,
        protocol,
        env_kwargs=env_kwargs,
        progress=terminal_progress("evaluating"),
    )
    document = {
        "checkpoint": str(path),
        "agent": runner_state["agent"],
        "env_id": env_id,
        "env_kwargs": env_kwargs,
        "step": runner_state["step"],
        "returns": result.returns,
        "lengths": result.lengths,
        "extra": result.extra,
        "mean_return": float(np.mean(result.returns)),
        "std_return": float(np.std(result.returns)),
    }
    measures = "".join(f", {name} {value:.4f}" for name, value in result.extra.items())
    print(
        f"{document['agent']} on {env_id} at step {document['step']}: mean return {document['mean_return']:.2f} "
        f"± {document['std_return']:.2f} over {args.episodes} episodes{measures}"
    )
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(document, indent=1))
    if args.capture_video:
        print(
            "video:",
            record_video(
                agent, env_id, path / "videos" / "evaluate.gif", args.seed, protocol, env_kwargs=env_kwargs
            ),
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
