"""The runner's side of DirectBackprop: the differentiable simulator behind an inventory env id.

``anew train directbackprop --env-id anew/LostSales-v0 --lead-time 2 --p 4 --total-steps 500`` is an
ordinary run (``runs/<env>__directbackprop__<seed>__<time>/`` with config.json, metrics.jsonl,
TensorBoard events, eval.json and checkpoints; ``anew evaluate`` and ``anew resume`` open it). The agent
may not import envs, so the registry's ``runner_phases`` hook calls :func:`directbackprop_phases`, which
builds the batched simulator of the run's env (``anew.envs.inventory_gym.make_sim``, the run's env options
and seed) and hands the agent a :class:`SimulatorRollout` over it. ``--total-steps`` counts gradient
updates; ``--checkpoint-every`` and ``--log-every`` count them too. Evaluation is every run's: episodes of
the Gymnasium env with the episode measures it reports (average cost per period, the optimality gap, ...).

``python -m anew.runners.inventory_train FLAGS`` is ``anew train directbackprop FLAGS`` (on
anew/LostSales-v0 unless ``--env-id`` says otherwise).
"""

from __future__ import annotations

import sys
from typing import Any

import torch

from anew.agents.core import Phase
from anew.agents.directbackprop import DirectBackpropAgent, Policy
from anew.envs.inventory_gym import ENV_IDS, SINGLE_PRODUCT, WRAPPER_OPTIONS, make_sim
from anew.errors import AnewError
from anew.runners.run_args import RunArgs


class SimulatorRollout:
    """``paths`` sample paths of an inventory simulator, ``periods`` long (None: whole episodes)."""

    def __init__(self, sim: Any, paths: int, periods: int | None):
        self.sim, self.paths, self.periods = sim, paths, periods

    def rollout(self, policy: Policy, carry: Any) -> tuple[torch.Tensor, Any]:
        return self.sim.rollout(policy, self.paths, self.periods, carry)

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.sim.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.sim.generator.set_state(state["generator"])


def simulator_options(run: RunArgs) -> dict[str, Any]:
    """The run's env options that describe the simulation (not those of the Gymnasium wrapper)."""
    return {key: value for key, value in run.env_kwargs.items() if key not in WRAPPER_OPTIONS}


def directbackprop_phases(agent: DirectBackpropAgent, run: RunArgs) -> tuple[Phase, ...]:
    """A DirectBackprop run's gradient phase: ``run.total_steps`` updates on its env's simulator."""
    if run.env_id not in ENV_IDS:
        raise AnewError(
            f"DirectBackprop trains on inventory envs only; --env-id must be one of {', '.join(ENV_IDS)}"
        )
    options = simulator_options(run)

    def make_simulator(paths: int, periods: int) -> SimulatorRollout:
        sim, _, _ = make_sim(run.env_id, paths, seed=run.seed, **options)
        return SimulatorRollout(sim, paths, periods if run.env_id in SINGLE_PRODUCT else None)

    return (agent.training_phase(make_simulator, run.total_steps),)


def main(argv: list[str] | None = None) -> int:
    """``anew train directbackprop`` with anew/LostSales-v0 as the default env."""
    from anew.runners.train import main as train_main

    argv = list(sys.argv[1:] if argv is None else argv)
    if not any(arg == "--env-id" or arg.startswith("--env-id=") for arg in argv):
        argv = ["--env-id", "anew/LostSales-v0", *argv]
    return train_main(["directbackprop", *argv])


if __name__ == "__main__":
    sys.exit(main())
