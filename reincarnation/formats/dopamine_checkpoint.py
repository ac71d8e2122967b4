"""Dopamine agent checkpoints (``ckpt.N`` bundles) into anew's PyTorch Q-networks, without JAX installed.

Dopamine's ``Checkpointer`` pickles the agent bundle to ``ckpt.N`` and then writes
``sentinel_checkpoint_complete.N``; the latest complete N is the largest sentinel. The bundle is loaded with
:mod:`anew.reincarnation.formats.safe_pickle` (jax arrays become numpy, flax FrozenDicts dicts, optax states tuples).

``NatureDQNNetwork`` (DQN) and ``RainbowNetwork`` (C51) parameters map one to one onto
``QNetwork(NatureCNN(4), num_actions, num_atoms)``: anew's Nature CNN already uses flax's SAME paddings
(2,2), (1,2), (1,1) and divides by 255 inside. Conv kernels go HWIO -> OIHW, dense kernels are transposed,
and the rows of ``Dense_0`` are permuted from flax's HWC flatten order to torch's CHW order.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from anew.agents.networks import NatureCNN, QNetwork
from anew.errors import AnewError
from anew.reincarnation.formats.safe_pickle import safe_load

SENTINEL_PREFIX = "sentinel_checkpoint_complete."
_LAYER_RE = re.compile(r"^(?P<kind>[A-Za-z]+)_(?P<number>\d+)$")
_MAX_ATARI_ACTIONS = 18
Kind = Literal["dqn", "rainbow"]


def find_checkpoint_dir(path: str | os.PathLike) -> Path:
    """The folder holding ``ckpt.N`` + sentinels: ``path`` itself or a Dopamine run's ``path/checkpoints``."""
    path = Path(path)
    if not path.is_dir():
        raise AnewError(f"{path} is not a folder: pass a Dopamine run folder or its checkpoints/ folder")
    if not any(path.glob(SENTINEL_PREFIX + "*")) and (path / "checkpoints").is_dir():
        return path / "checkpoints"
    return path


def complete_iterations(checkpoint_dir: str | os.PathLike) -> list[int]:
    """Iterations N that have a ``sentinel_checkpoint_complete.N`` file, ascending."""
    names = (p.name[len(SENTINEL_PREFIX) :] for p in Path(checkpoint_dir).glob(SENTINEL_PREFIX + "*"))
    return sorted(int(n) for n in names if n.isdigit())


def load_dopamine_bundle(checkpoint_dir: str | os.PathLike, iteration: int | None = None) -> tuple[dict, int]:
    """The unpickled ``ckpt.N`` bundle (latest complete N by default) and N."""
    folder = find_checkpoint_dir(checkpoint_dir)
    complete = complete_iterations(folder)
    if iteration is None:
        if not complete:
            raise AnewError(
                f"no complete Dopamine checkpoint in {folder}: expected ckpt.N files with "
                "sentinel_checkpoint_complete.N beside them"
            )
        iteration = complete[-1]
    elif int(iteration) not in complete:
        raise AnewError(
            f"Dopamine checkpoint {iteration} in {folder} is not complete (no "
            f"{SENTINEL_PREFIX}{iteration}); complete ones: {complete or 'none'}"
        )
    path = folder / f"ckpt.{int(iteration)}"
    if not path.is_file():
        raise AnewError(f"{path} is missing although its sentinel exists; copy the whole checkpoints folder")
    bundle = safe_load(path)
    if not isinstance(bundle, dict):
        raise AnewError(
            f"{path} does not hold a Dopamine agent bundle (a dict); it is not a Dopamine checkpoint"
        )
    return bundle, int(iteration)


def _renumber_layers(layers: dict[str, Any]) -> dict[str, Any]:
    """Pre-Linen trees number layers globally (Conv_0..2, Dense_3, Dense_4); Linen per class (Dense_0, _1)."""
    by_kind: dict[str, list[tuple[int, str]]] = {}
    for name in layers:
        match = _LAYER_RE.match(name)
        if match is None:
            raise AnewError(
                f"unexpected parameter group {name!r}; anew converts NatureDQNNetwork and "
                "RainbowNetwork parameter trees (Conv_0..2, Dense_0..1)"
            )
        by_kind.setdefault(match["kind"], []).append((int(match["number"]), name))
    return {
        f"{kind}_{rank}": layers[name]
        for kind, numbered in by_kind.items()
        for rank, (_, name) in enumerate(sorted(numbered))
    }


def dopamine_params(
    bundle: dict, which: Literal["online", "target"] = "online"
) -> dict[str, dict[str, np.ndarray]]:
    """``{'Conv_0': {'kernel', 'bias'}, ..., 'Dense_1': {...}}`` from a bundle (Linen or pre-Linen layout)."""
    key = f"{which}_params"
    if key not in bundle:
        raise AnewError(
            f"the Dopamine bundle has no {key!r} (keys: {sorted(bundle)}); it is not a JAX DQN/Rainbow "
            "agent checkpoint"
        )
    tree = bundle[key]
    if isinstance(tree, dict) and set(tree) == {"params"}:
        tree = tree["params"]
    if not isinstance(tree, dict):
        raise AnewError(f"{key} is a {type(tree).__name__}, not a parameter dict")
    return _renumber_layers(tree)


def _array(layers: dict, layer: str, leaf: str, ndim: int) -> np.ndarray:
    try:
        value = np.asarray(layers[layer][leaf], dtype=np.float32)
    except (KeyError, TypeError):
        raise AnewError(
            f"the parameter tree has no {layer}/{leaf} (layers: {sorted(layers)}); anew converts "
            "NatureDQNNetwork and RainbowNetwork (not FullRainbow's noisy/dueling heads)"
        ) from None
    if value.ndim != ndim:
        raise AnewError(f"{layer}/{leaf} has shape {value.shape}; a Nature CNN expects {ndim} dimensions")
    return value


def nature_state_dict(layers: dict[str, dict[str, np.ndarray]]) -> dict[str, torch.Tensor]:
    """Flax Nature-CNN parameters as a ``QNetwork(NatureCNN(c), A, atoms)`` state_dict."""
    expected = {"Conv_0", "Conv_1", "Conv_2", "Dense_0", "Dense_1"}
    if set(layers) != expected:
        raise AnewError(
            f"found layers {sorted(layers)}, a Nature CNN has {sorted(expected)}; anew converts "
            "NatureDQNNetwork and RainbowNetwork checkpoints"
        )
    state: dict[str, torch.Tensor] = {}
    for index in range(3):
        kernel = _array(layers, f"Conv_{index}", "kernel", 4)  # HWIO
        state[f"torso.conv{index}.weight"] = torch.from_numpy(
            np.ascontiguousarray(kernel.transpose(3, 2, 0, 1))
        )
        state[f"torso.conv{index}.bias"] = torch.from_numpy(_array(layers, f"Conv_{index}", "bias", 1).copy())
    dense0 = _array(layers, "Dense_0", "kernel", 2)
    channels = state["torso.conv2.weight"].shape[0]
    side = math.isqrt(dense0.shape[0] // channels)
    if side * side * channels != dense0.shape[0]:
        raise AnewError(f"Dense_0 has {dense0.shape[0]} inputs, not a square map of {channels} channels")
    # Flax flattens (h, w, c); torch flattens (c, h, w).
    hwc_to_chw = dense0.reshape(side, side, channels, -1).transpose(3, 2, 0, 1).reshape(dense0.shape[1], -1)
    state["torso.dense.weight"] = torch.from_numpy(np.ascontiguousarray(hwc_to_chw))
    state["torso.dense.bias"] = torch.from_numpy(_array(layers, "Dense_0", "bias", 1).copy())
    state["head.weight"] = torch.from_numpy(np.ascontiguousarray(_array(layers, "Dense_1", "kernel", 2).T))
    state["head.bias"] = torch.from_numpy(_array(layers, "Dense_1", "bias", 1).copy())
    return state


def dopamine_support(v_min: float, v_max: float, num_atoms: int) -> np.ndarray:
    """C51 atoms as float32 ``linspace(v_min, v_max, num_atoms)`` (within 1e-6 of JAX's float32 linspace)."""
    return np.linspace(v_min, v_max, num_atoms, dtype=np.float32)


@dataclass
class DopamineConversion:
    """A Dopamine agent converted to an anew ``QNetwork`` state_dict, with what is needed to rebuild it."""

    state_dict: dict[str, torch.Tensor]
    kind: Kind
    num_actions: int
    num_atoms: int
    in_channels: int
    iteration: int
    training_steps: int | None
    support: np.ndarray | None = None
    logs: dict = field(default_factory=dict, repr=False)

    def metadata(self) -> dict[str, Any]:
        """JSON-ready description (for ``anew convert dopamine``)."""
        meta: dict[str, Any] = {
            "source": "dopamine",
            "kind": self.kind,
            "num_actions": self.num_actions,
            "num_atoms": self.num_atoms,
            "in_channels": self.in_channels,
            "iteration": self.iteration,
            "training_steps": self.training_steps,
            "network": f"QNetwork(NatureCNN({self.in_channels}), {self.num_actions}, {self.num_atoms})",
            "observation": "uint8 frame stack, channels first (B, 4, 84, 84); the network divides by 255",
        }
        if self.support is not None:
            meta.update(v_min=float(self.support[0]), v_max=float(self.support[-1]))
        return meta

    def build_network(self) -> QNetwork:
        network = QNetwork(NatureCNN(self.in_channels), self.num_actions, self.num_atoms)
        network.load_state_dict(self.state_dict)
        return network


def convert_dopamine_checkpoint(
    checkpoint_dir: str | os.PathLike,
    iteration: int | None = None,
    kind: Kind = "dqn",
    *,
    params: Literal["online", "target"] = "online",
    num_atoms: int = 51,
    v_max: float = 10.0,
    v_min: float | None = None,
) -> DopamineConversion:
    """Read ``ckpt.N`` and convert its ``online_params`` (JAX DQN or Rainbow/C51) to anew's layout.

    ``num_atoms``, ``v_max`` and ``v_min`` (default ``-v_max``) are Rainbow settings Dopamine does not store in
    the checkpoint; the defaults are Dopamine's.
    """
    if kind not in ("dqn", "rainbow"):
        raise AnewError(f"kind must be 'dqn' or 'rainbow', got {kind!r}")
    bundle, iteration = load_dopamine_bundle(checkpoint_dir, iteration)
    state = nature_state_dict(dopamine_params(bundle, params))
    outputs, in_channels = state["head.bias"].shape[0], state["torso.conv0.weight"].shape[1]
    atoms = num_atoms if kind == "rainbow" else 1
    if kind == "dqn" and outputs > _MAX_ATARI_ACTIONS and outputs % num_atoms == 0:
        raise AnewError(
            f"the network has {outputs} outputs, {outputs // num_atoms} actions x {num_atoms} atoms: "
            "this is a Rainbow/C51 checkpoint; pass kind='rainbow'"
        )
    if outputs % atoms:
        raise AnewError(
            f"the head has {outputs} outputs, not a multiple of num_atoms={atoms}; pass the num_atoms "
            "the agent was trained with (or kind='dqn')"
        )
    support = (
        dopamine_support(-v_max if v_min is None else v_min, v_max, atoms) if kind == "rainbow" else None
    )
    steps = bundle.get("training_steps")
    logs = bundle.get("logs")
    return DopamineConversion(
        state_dict=state,
        kind=kind,
        num_actions=outputs // atoms,
        num_atoms=atoms,
        in_channels=int(in_channels),
        iteration=iteration,
        training_steps=None if steps is None else int(steps),
        support=support,
        logs=logs if isinstance(logs, dict) else {},
    )


@dataclass
class DopamineNetworkOutput:
    """Like Dopamine's ``DQNNetworkType`` / ``RainbowNetworkType``."""

    q_values: torch.Tensor
    logits: torch.Tensor | None = None
    probabilities: torch.Tensor | None = None


class DopamineNetwork(nn.Module):
    """An anew ``QNetwork`` that takes Dopamine-layout states (B, 84, 84, 4) and answers like Dopamine's nets."""

    def __init__(self, network: QNetwork, support: torch.Tensor | np.ndarray | None = None):
        super().__init__()
        self.network = network
        self.register_buffer(
            "support", None if support is None else torch.as_tensor(support, dtype=torch.float32)
        )

    def forward(self, states: torch.Tensor | np.ndarray) -> DopamineNetworkOutput:
        states = torch.as_tensor(states)
        if states.ndim != 4:
            raise AnewError(
                f"expected a batch of Dopamine states (B, 84, 84, 4), got shape {tuple(states.shape)}"
            )
        channels_first = states.permute(0, 3, 1, 2)  # Dopamine stacks frames on the last axis
        if self.support is None:
            return DopamineNetworkOutput(q_values=self.network(channels_first))
        logits = self.network.logits(channels_first)
        probabilities = torch.softmax(logits, dim=-1)
        return DopamineNetworkOutput(
            q_values=(probabilities * self.support).sum(-1), logits=logits, probabilities=probabilities
        )


def load_dopamine_network(
    checkpoint_dir: str | os.PathLike, iteration: int | None = None, kind: Kind = "dqn", **options: Any
) -> DopamineNetwork:
    """A Dopamine JAX DQN or Rainbow checkpoint as a torch module (eval mode) on Dopamine-layout uint8 states.

    ``output = net(states)`` has ``q_values`` (B, A) and, for Rainbow, ``logits`` and ``probabilities``
    (B, A, atoms). ``net.network`` is the plain anew ``QNetwork`` (channels-first input). ``options`` go to
    :func:`convert_dopamine_checkpoint` (params, num_atoms, v_max, v_min).
    """
    conversion = convert_dopamine_checkpoint(checkpoint_dir, iteration, kind, **options)
    return DopamineNetwork(conversion.build_network(), conversion.support).eval()
