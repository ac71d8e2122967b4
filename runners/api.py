"""anew from Python: the same runs as the ``anew`` command, for scripts and notebooks.

import anew
run_dir = anew.train("dqn", env_id="CartPole-v1", seed=1, total_steps=20_000)
agent = anew.load_agent(run_dir)
print(anew.evaluate(agent, "CartPole-v1", episodes=10).returns)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from anew.runners.evaluate import Evaluation, evaluate_agent
from anew.runners.loading import load_agent_from_checkpoint
from anew.runners.train import main as train_main


def _flags(options: dict[str, Any]) -> list[str]:
    flags: list[str] = []
    for key, value in options.items():
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            flags.append(flag if value else "--no-" + key.replace("_", "-"))
        elif isinstance(value, (tuple, list)):
            flags += [flag, *map(str, value)]
        else:
            flags += [flag, str(value)]
    return flags


def train(agent: str, **options: Any) -> Path:
    """Train ``agent`` exactly as ``anew train AGENT`` would and return its run directory.

    ``options`` are the command's flags with underscores: run flags (``env_id``, ``seed``, ``total_steps``,
    ``run_dir`` …), agent flags (``lr``, ``hidden=(64, 64)`` …) and env options (``lead_time=2``). Without
    ``run_dir`` the run goes to ``runs/<env>__<agent>__<seed>__<time>/``. Bad options raise ``AnewError``.
    """
    from anew.runners.run_args import parse_train_args
    from anew.runners.run_dir import default_run_dir

    argv = [agent, *_flags(options)]
    if "run_dir" not in options:
        _, run, _ = parse_train_args(argv)
        argv += ["--run-dir", str(default_run_dir(run.env_id, agent, run.seed))]
    train_main(argv)
    return Path(argv[argv.index("--run-dir") + 1])


def load_agent(path: str | Path) -> Any:
    """The agent saved in a run directory (its newest checkpoint) or a ``checkpoints/step_*`` folder, ready to
    ``act(obs, explore=False)`` on a batch of observations."""
    return load_agent_from_checkpoint(path)[0]


def evaluate(agent: Any, env_id: str, episodes: int = 10, seed: int = 0, **env_options: Any) -> Evaluation:
    """Play ``episodes`` episodes with the agent's evaluation policy: returns, lengths and the game's measures."""
    return evaluate_agent(agent, env_id, episodes, seed, env_kwargs=env_options)


__all__ = ["Evaluation", "evaluate", "load_agent", "train"]
