"""``anew convert dopamine CHECKPOINT_DIR --out RUN_DIR --env-id ALE/<Game>-v5 [--kind dqn|rainbow]``.

Makes a Dopamine JAX agent (``ckpt.N`` + ``sentinel_checkpoint_complete.N``) an anew checkpoint:
``RUN_DIR/checkpoints/step_<N>/`` with ``agent.pt`` (loadable with ``torch.load(weights_only=True)``) and
``runner.json``, written atomically by :mod:`anew.runners.checkpoint`, so that ``anew evaluate RUN_DIR`` and
``anew reincarnate METHOD --teacher RUN_DIR`` accept it. N is Dopamine's ``training_steps`` (agent steps).

The agent is anew's ``dqn`` on its ``dopamine`` preset (or ``rainbow`` on ``dopamine-rainbow``) with the
Nature CNN, playing the ``dopamine`` Atari protocol. Dopamine does not record the game, so ``--env-id`` names it; its action count
must match the network's. The converted network is checked against the direct conversion on a random
input. The optimizer state is fresh and the step counters start at 0 (Dopamine's Adam state is not
carried over); RUN_DIR gets no config.json, so ``anew resume`` does not treat it as an unfinished run.
"""

from __future__ import annotations

import dataclasses
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import gymnasium as gym
import numpy as np
import torch
import tyro

from anew import __version__
from anew.agents.core import AgentSpec
from anew.envs import make_env
from anew.errors import AnewError
from anew.reincarnation.baselines import copy_parameters
from anew.reincarnation.formats import DopamineConversion, convert_dopamine_checkpoint
from anew.runners import registry
from anew.runners.checkpoint import checkpoint_name, save_checkpoint
from anew.runners.run_args import RunArgs

# (agent, preset) for each Dopamine agent: JAX DQN (dqn.gin) and JaxRainbowAgent (rainbow.gin: C51, n = 3,
# prioritized replay, no noisy nets, no dueling: Dopamine's RainbowNetwork).
AGENT_FOR_KIND = {"dqn": ("dqn", "dopamine"), "rainbow": ("rainbow", "dopamine-rainbow")}


@dataclass
class ConvertArgs:
    """Turn a foreign agent checkpoint into an anew checkpoint directory."""

    source: Annotated[Literal["dopamine"], tyro.conf.Positional]
    """Format of the checkpoint (dopamine: JAX DQN / Rainbow ckpt.N bundles)."""
    checkpoint_dir: Annotated[str, tyro.conf.Positional]
    """The Dopamine run folder or its checkpoints/ folder."""
    out: str = ""
    """The anew run directory to write (its checkpoints/step_<N>/ holds the agent)."""
    env_id: str = ""
    """The game the agent played, as ALE/<Game>-v5 (Dopamine does not record it)."""
    kind: Literal["dqn", "rainbow"] = "dqn"
    """The Dopamine agent: JAX DQN (NatureDQNNetwork) or Rainbow/C51 (RainbowNetwork)."""
    iteration: int = -1
    """Which ckpt.N to convert (-1: the latest complete one)."""
    params: Literal["online", "target"] = "online"
    """Which of the bundle's networks to convert."""


def converted_config(conversion: DopamineConversion) -> tuple[str, Any]:
    """The Dopamine agent's anew preset with the Nature CNN (and, for Rainbow, the checkpoint's atoms)."""
    agent_name, preset = AGENT_FOR_KIND[conversion.kind]
    preset_name, config = registry.preset_config(agent_name, preset, "ALE/Pong-v5")
    overrides: dict[str, Any] = {"torso": "nature"}
    if conversion.kind == "rainbow":
        assert conversion.support is not None
        overrides.update(
            num_atoms=conversion.num_atoms,
            v_min=float(conversion.support[0]),
            v_max=float(conversion.support[-1]),
        )
    known = {field.name for field in dataclasses.fields(config)}
    return preset_name, dataclasses.replace(config, **{k: v for k, v in overrides.items() if k in known})


def convert_dopamine(args: ConvertArgs) -> Path:
    """Write the anew checkpoint for ``args`` and return its directory."""
    if not args.out:
        raise AnewError("name the output run directory: --out RUN_DIR")
    if not args.env_id.startswith("ALE/"):
        raise AnewError(
            f"--env-id must name the game as ALE/<Game>-v5 (got {args.env_id!r}); Dopamine checkpoints "
            "do not record it"
        )
    agent_name = AGENT_FOR_KIND[args.kind][0]
    if agent_name not in registry.available_agents():
        raise AnewError(
            f"--kind {args.kind} needs anew's {agent_name} agent, which this build lacks; a Dopamine "
            f"{args.kind} checkpoint can still teach directly: anew reincarnate METHOD --teacher "
            f"{args.checkpoint_dir} --teacher-kind {args.kind}"
        )
    iteration = None if args.iteration < 0 else args.iteration
    try:
        conversion = convert_dopamine_checkpoint(
            args.checkpoint_dir, iteration, args.kind, params=args.params
        )
    except AnewError as error:  # the library names its keyword (kind='rainbow'); here it is a flag
        raise AnewError(re.sub(r"kind='(\w+)'", r"--kind \1", str(error))) from None
    env = make_env(args.env_id, "dopamine", training=False)
    actions = int(env.action_space.n)
    env.close()
    if actions != conversion.num_actions:
        raise AnewError(
            f"the checkpoint's network has {conversion.num_actions} actions but {args.env_id} has "
            f"{actions}; pass the game the agent was trained on"
        )
    preset_name, config = converted_config(conversion)
    observation_space = gym.spaces.Box(0, 255, (conversion.in_channels, 84, 84), np.uint8)
    build_config = dataclasses.replace(config, buffer_size=1_000, replay_on_disk="")  # no replay is written
    spec = AgentSpec(observation_space, gym.spaces.Discrete(actions), 1, 0, "cpu")
    agent = registry.build_agent(agent_name, build_config, spec)
    copy_parameters(list(conversion.state_dict.values()), agent.online)
    agent.sync_target()
    _check_same_q_values(agent.online, conversion)

    step = conversion.training_steps if conversion.training_steps is not None else conversion.iteration
    run = RunArgs(
        env_id=args.env_id,
        preset=preset_name,
        env_protocol="dopamine",
        total_steps=max(step, 1),
        run_dir=args.out,
    )
    source = {
        "format": "dopamine",
        "checkpoint_dir": str(Path(args.checkpoint_dir).resolve()),
        "params": args.params,
        **conversion.metadata(),
    }
    runner_state = {
        "agent": agent_name,
        "env_id": args.env_id,
        "run": dataclasses.asdict(run),
        "agent_config": dataclasses.asdict(config),
        "anew_version": __version__,
        "converted_from": source,
    }
    checkpoints = Path(args.out) / "checkpoints"
    if (checkpoints / checkpoint_name(step)).exists():
        raise AnewError(f"{checkpoints / checkpoint_name(step)} exists already; pick another --out")
    path = save_checkpoint(
        checkpoints,
        step,
        {"agent": agent.state_dict(), "torch_rng": torch.get_rng_state()},
        runner_state,
        keep=0,
    )
    (Path(args.out) / "converted_from.json").write_text(json.dumps(source, indent=1))
    return path


def _check_same_q_values(network: torch.nn.Module, conversion: DopamineConversion) -> None:
    reference = conversion.build_network().eval()
    states = torch.randint(
        0,
        256,
        (2, conversion.in_channels, 84, 84),
        dtype=torch.uint8,
        generator=torch.Generator().manual_seed(0),
    )
    with torch.no_grad():
        expected = reference(states)
        if conversion.support is not None:
            probabilities = torch.softmax(reference.logits(states), dim=-1)
            expected = (probabilities * torch.as_tensor(conversion.support)).sum(-1)
        got = network.eval()(states)
    if not torch.allclose(got, expected, atol=1e-5):
        raise AnewError(
            f"the converted {conversion.kind} network disagrees with the Dopamine parameters (max "
            f"|dQ| {float((got - expected).abs().max()):.2e}); this anew build's network layout differs"
        )


def main(argv: list[str] | None = None) -> int:
    args = tyro.cli(ConvertArgs, args=argv, prog="anew convert")
    path = convert_dopamine(args)
    print(
        f"converted {args.kind} checkpoint {args.checkpoint_dir} -> {path}\n"
        f"  evaluate it:   anew evaluate {args.out}\n"
        f"  teach with it: anew reincarnate qdagger --teacher {args.out} --env-id {args.env_id}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
