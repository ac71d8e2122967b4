"""Run logging: TensorBoard (CleanRL names), ``metrics.jsonl``, and progress on the terminal.

On resume, events past the checkpoint are purged the TensorBoard way (``purge_step``) and
``metrics.jsonl`` is cut back to the checkpoint, so the step sequence equals an uninterrupted run.

A phase without env steps (offline pre-training, a pipeline's stage) logs against its own unit count: its
events go to their own TensorBoard run ``phases/<name>/`` and its ``metrics.jsonl`` lines carry
``"phase": name``, so its axis never collides with the agent-step axis (nor is purged by it).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from torch.utils.tensorboard import SummaryWriter


class RunLogger:
    """``resume_step``: the agent step of the checkpoint a resumed run starts from; ``resume_phase``: the phase
    and units done when that checkpoint was written inside a phase."""

    def __init__(
        self,
        run_dir: Path,
        total_steps: int,
        resume_step: int | None = None,
        progress: bool = True,
        resume_phase: tuple[str, int] | None = None,
    ):
        self.run_dir = run_dir
        self.metrics_path = run_dir / "metrics.jsonl"
        self.resume_phase = resume_phase
        if resume_step is not None:
            self._truncate_metrics(resume_step)
        purge = None if resume_step is None else resume_step + 1
        self.writer = SummaryWriter(str(run_dir), purge_step=purge)
        self.phase_writers: dict[str, SummaryWriter] = {}
        self.metrics_file = open(self.metrics_path, "a")  # noqa: SIM115 (open for the run, closed in close())
        self.total_steps = total_steps
        self.bar = None
        self.last_line = time.monotonic()
        self.final_line = False  # the last step's line prints once; later ones (evaluation) every 30 s
        if progress and sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total_steps, initial=resume_step or 0, unit="step", dynamic_ncols=True)

    def _truncate_metrics(self, step: int) -> None:
        if not self.metrics_path.exists():
            return
        kept = [
            line
            for line in self.metrics_path.read_text().splitlines()
            if line and self._keep(json.loads(line), step)
        ]
        temporary = self.metrics_path.with_suffix(".jsonl.tmp")
        temporary.write_text("".join(line + "\n" for line in kept))
        os.replace(temporary, self.metrics_path)

    def _keep(self, line: dict[str, Any], step: int) -> bool:
        """Whether a logged line was written before the checkpoint being resumed."""
        if "phase" not in line:
            return line["step"] <= step
        return (
            self.resume_phase is None
            or line["phase"] != self.resume_phase[0]
            or line["step"] <= self.resume_phase[1]
        )

    def _writer(self, phase: str | None) -> SummaryWriter:
        if phase is None:
            return self.writer
        if phase not in self.phase_writers:
            resuming = self.resume_phase is not None and self.resume_phase[0] == phase
            self.phase_writers[phase] = SummaryWriter(
                str(self.run_dir / "phases" / phase),
                purge_step=self.resume_phase[1] + 1 if resuming else None,
            )
        return self.phase_writers[phase]

    def hyperparameters(self, config: dict[str, Any]) -> None:
        rows = "\n".join(f"|{key}|{value}|" for key, value in _flatten(config).items())
        self.writer.add_text("hyperparameters", f"|param|value|\n|-|-|\n{rows}", 0)

    def scalars(self, step: int, values: dict[str, float], phase: str | None = None) -> None:
        """Log ``values`` at ``step`` (agent steps; or units done, inside ``phase``)."""
        writer = self._writer(phase)
        for name, value in values.items():
            writer.add_scalar(name, value, step)
        line = {"step": step, **values} if phase is None else {"phase": phase, "step": step, **values}
        self.metrics_file.write(json.dumps(line) + "\n")

    def progress(self, step: int, message: str = "") -> None:
        if self.bar is not None:
            self.bar.n = step
            self.bar.set_postfix_str(message, refresh=False)
            self.bar.refresh()
        elif time.monotonic() - self.last_line > 30 or (step >= self.total_steps and not self.final_line):
            print(f"step {step}/{self.total_steps} {message}", file=sys.stderr, flush=True)
            self.last_line, self.final_line = time.monotonic(), step >= self.total_steps

    def message(self, text: str) -> None:
        if self.bar is not None:  # above the bar (tqdm clears it, prints, redraws), on stderr like the bar
            self.bar.write(text, file=sys.stderr)
        else:
            print(text, file=sys.stderr, flush=True)

    def flush(self) -> None:
        self.metrics_file.flush()
        for writer in (self.writer, *self.phase_writers.values()):
            writer.flush()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        self.metrics_file.close()
        for writer in (self.writer, *self.phase_writers.values()):
            writer.close()


def _flatten(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat
