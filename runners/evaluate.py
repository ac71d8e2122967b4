"""Evaluation: play whole episodes with the agent's evaluation policy; ``anew evaluate CHECKPOINT``."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import tyro

from anew.envs import make_env, make_vector_env
from anew.errors import AnewError


def evaluate_agent(
    agent: Any,
    env_id: str,
    episodes: int,
    seed: int,
    env_protocol: str = "",
    max_parallel: int = 8,
    env_kwargs: dict[str, Any] | None = None,
) -> tuple[list[float], list[int]]:
    """Returns and lengths of ``episodes`` episodes, played in up to ``max_parallel`` envs at once.

    Each env plays a fixed quota of episodes (not "first N to finish", which would favour short
    episodes); episode seeds derive from ``seed`` so the same seed replays the same episodes.
    """
    num_envs = max(1, min(episodes, max_parallel))
    quota = np.array([episodes // num_envs + (i < episodes % num_envs) for i in range(num_envs)])
    envs = make_vector_env(env_id, num_envs, seed=seed, env_protocol=env_protocol, training=False, env_kwargs=env_kwargs)
    obs, _ = envs.reset(seed=seed)
    running_return, running_length = np.zeros(num_envs), np.zeros(num_envs, dtype=int)
    finished = np.zeros(num_envs, dtype=int)
    returns: list[list[float]] = [[] for _ in range(num_envs)]
    lengths: list[list[int]] = [[] for _ in range(num_envs)]
    while (finished < quota).any():
        obs, reward, terminated, truncated, _ = envs.step(agent.act(obs, explore=False))
        running_return += reward
        running_length += 1
        for i in np.flatnonzero(terminated | truncated):
            if finished[i] < quota[i]:
                returns[i].append(float(running_return[i]))
                lengths[i].append(int(running_length[i]))
                finished[i] += 1
            running_return[i], running_length[i] = 0.0, 0
    envs.close()
    order = [(i, k) for k in range(int(quota.max())) for i in range(num_envs) if k < quota[i]]
    return [returns[i][k] for i, k in order], [lengths[i][k] for i, k in order]


def record_video(
    agent: Any, env_id: str, path: Path, seed: int, env_protocol: str = "", max_frames: int = 5_000,
    env_kwargs: dict[str, Any] | None = None,
) -> Path:
    """Play one evaluation episode and save it as an animated GIF (no video codec needed)."""
    import gymnasium as gym
    from PIL import Image

    try:
        env = make_env(env_id, env_protocol, training=False, render_mode="rgb_array", **(env_kwargs or {}))
        obs, _ = env.reset(seed=seed)
        first = env.render()
    except gym.error.DependencyNotInstalled as error:
        raise AnewError(f"--capture-video cannot render {env_id}: {error}") from error
    frames, done = [first], False
    while not done and len(frames) < max_frames:
        obs, _, terminated, truncated, _ = env.step(agent.act(obs[None], explore=False)[0])
        frames.append(env.render())
        done = terminated or truncated
    env.close()
    path.parent.mkdir(parents=True, exist_ok=True)
    images = [Image.fromarray(np.asarray(frame)) for frame in frames if frame is not None]
    fps = env.metadata.get("render_fps", 30)
    images[0].save(path, save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0)
    return path


@dataclass
class EvaluateArgs:
    """Evaluate a saved agent: ``anew evaluate RUN_DIR_OR_CHECKPOINT --episodes 20``."""

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
    from anew.runners.train import load_agent_from_checkpoint

    args = tyro.cli(EvaluateArgs, args=argv, prog="anew evaluate")
    if args.episodes < 1:
        raise AnewError(f"--episodes must be at least 1 (got {args.episodes})")
    agent, runner_state, path = load_agent_from_checkpoint(args.checkpoint)
    env_id = args.env_id or runner_state["env_id"]
    protocol = runner_state["run"].get("env_protocol", "")
    env_kwargs = runner_state["run"].get("env_kwargs", {})
    returns, lengths = evaluate_agent(agent, env_id, args.episodes, args.seed, protocol, env_kwargs=env_kwargs)
    result = {
        "checkpoint": str(path),
        "agent": runner_state["agent"],
        "env_id": env_id,
        "step": runner_state["step"],
        "returns": returns,
        "lengths": lengths,
        "mean_return": float(np.mean(returns)),
        "std_return": float(np.std(returns)),
    }
    print(f"{result['agent']} on {env_id} at step {result['step']}: mean return {result['mean_return']:.2f} "
          f"± {result['std_return']:.2f} over {args.episodes} episodes")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(result, indent=1))
    if args.capture_video:
        print("video:", record_video(agent, env_id, path / "videos" / "evaluate.gif", args.seed, protocol,
                                     env_kwargs=env_kwargs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
