"""Comparing the run folders of two runs that should have trained the same agent (one stopped and resumed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


def same_final_networks(whole: Path, other: Path, step: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """Assert the online and target networks both runs saved at ``step`` are equal to the bit; return the two
    agent states for further checks."""
    final = f"checkpoints/step_{step:012d}/agent.pt"
    a, b = (torch.load(run_dir / final, weights_only=True)["agent"] for run_dir in (whole, other))
    for net in ("online", "target"):
        for name, tensor in a[net].items():
            assert torch.equal(tensor, b[net][name]), f"{net}.{name} differs"
    return a, b


def scalars(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """Every TensorBoard scalar the run logged, as (step, value) pairs by tag (charts/SPS left out: it is timing)."""
    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    events.Reload()
    return {
        tag: [(e.step, e.value) for e in events.Scalars(tag)]
        for tag in events.Tags()["scalars"]
        if tag != "charts/SPS"
    }
