"""Run logging: TensorBoard (CleanRL names), ``metrics.jsonl``, and progress on the terminal.

On resume, events past the checkpoint are purged the TensorBoard way (``purge_step``) and
``metrics.jsonl`` is cut back to the checkpoint, so the step sequence equals an uninterrupted run.
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
    def __init__(self, run_dir: Path, total_steps: int, resume_step: int | None = None, progress: bool = True):
        self.run_dir = run_dir
        self.metrics_path = run_dir / "metrics.jsonl"
        if resume_step is not None:
            self._truncate_metrics(resume_step)
        purge = None if resume_step is None else resume_step + 1
        self.writer = SummaryWriter(str(run_dir), purge_step=purge)
        self.metrics_file = open(self.metrics_path, "a")  # noqa: SIM115 (open for the run, closed in close())
        self.total_steps = total_steps
        self.bar = None
        self.last_line = time.monotonic()
        if progress and sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total_steps, initial=resume_step or 0, unit="step", dynamic_ncols=True)

    def _truncate_metrics(self, step: int) -> None:
        if not self.metrics_path.exists():
            return
        kept = [line for line in self.metrics_path.read_text().splitlines() if line and json.loads(line)["step"] <= step]
        temporary = self.metrics_path.with_suffix(".jsonl.tmp")
        temporary.write_text("".join(line + "\n" for line in kept))
        os.replace(temporary, self.metrics_path)

    def hyperparameters(self, config: dict[str, Any]) -> None:
        rows = "\n".join(f"|{key}|{value}|" for key, value in _flatten(config).items())
        self.writer.add_text("hyperparameters", f"|param|value|\n|-|-|\n{rows}", 0)

    def scalars(self, step: int, values: dict[str, float]) -> None:
        for name, value in values.items():
            self.writer.add_scalar(name, value, step)
        self.metrics_file.write(json.dumps({"step": step, **values}) + "\n")

    def progress(self, step: int, message: str = "") -> None:
        if self.bar is not None:
            self.bar.n = step
            self.bar.set_postfix_str(message, refresh=False)
            self.bar.refresh()
        elif time.monotonic() - self.last_line > 30 or step >= self.total_steps:
            print(f"step {step}/{self.total_steps} {message}", file=sys.stderr, flush=True)
            self.last_line = time.monotonic()

    def message(self, text: str) -> None:
        (self.bar.write if self.bar is not None else lambda t: print(t, file=sys.stderr, flush=True))(text)

    def flush(self) -> None:
        self.metrics_file.flush()
        self.writer.flush()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        self.metrics_file.close()
        self.writer.close()


def _flatten(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat
