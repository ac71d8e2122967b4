"""Killing an `anew` CLI run with SIGKILL part-way and continuing it with `anew resume`: the tests that compare
such a run with the same run left alone start both with :func:`anew`, kill one with :func:`sigkill_when`, check
it stopped part-way, then :func:`resume_and_finish`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path


def anew(*argv: str) -> subprocess.Popen:
    """The `anew` CLI with ``argv`` in a subprocess (stderr kept for the failure message)."""
    return subprocess.Popen(
        [sys.executable, "-m", "anew.runners.cli", *argv], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


def sigkill_when(victim: subprocess.Popen, ready: Callable[[], object]) -> None:
    """Wait until ``ready()`` is true (the run still alive meanwhile), then SIGKILL ``victim`` and assert it died."""
    while not ready():
        assert victim.poll() is None, victim.stderr.read().decode()
        time.sleep(0.01)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    assert victim.returncode == -signal.SIGKILL


def resume_and_finish(killed: Path, reference: subprocess.Popen) -> None:
    """Run `anew resume` on the killed run's folder to the end, and let the ``reference`` run finish: both succeed."""
    resumed = anew("resume", str(killed))
    assert resumed.wait() == 0, resumed.stderr.read().decode()
    assert reference.wait() == 0, reference.stderr.read().decode()
