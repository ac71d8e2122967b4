"""The README's "Python API" code blocks run as written (Dopamine paths pointed at the shared fixtures)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
FIXTURES = Path(os.environ.get("ANEW_FIXTURES", Path(__file__).resolve().parents[2] / "shared" / "fixtures"))


def api_blocks() -> list[str]:
    text = README.read_text()
    section = text.split("## Python API", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)


def test_the_python_api_blocks_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = api_blocks()
    assert len(blocks) == 4
    monkeypatch.chdir(tmp_path)  # the run goes to ./runs/ as the README says
    namespace: dict = {}
    for block in blocks[:3]:
        exec(compile(block, "README.md", "exec"), namespace)  # noqa: S102 (the README's own code)
    assert Path(namespace["run_dir"]).is_dir() and len(namespace["result"].returns) == 5
    assert set(namespace["iqm"]) == {"dqn", "ppo"}
    legacy, jax_run = FIXTURES / "dopamine" / "legacy_replay_pong", FIXTURES / "dopamine" / "jax_dqn_pong"
    if not legacy.is_dir():
        pytest.skip(f"Dopamine fixtures not found at {FIXTURES} (set ANEW_FIXTURES)")
    dopamine = blocks[3].replace("dopamine_runs/pong/replay_logs", str(legacy / "replay"))
    dopamine = dopamine.replace("dopamine_runs/pong/checkpoints", str(jax_run / "checkpoints"))
    exec(compile(dopamine, "README.md", "exec"), namespace)  # noqa: S102
    assert namespace["q_values"].shape[0] == 1 and namespace["batch"]["state"].shape[0] == 32
