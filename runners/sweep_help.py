"""What ``anew sweep --help`` says: the spec format with an example (``EXAMPLE_SPEC``, run by a test), and how
flag values that look like flags are read."""

from __future__ import annotations

import textwrap

EXAMPLE_SPEC = """\
out_dir = "runs/cartpole-lr"        # run folders, logs/, report/ (relative to this file's folder)
envs = ["CartPole-v1"]              # environment ids (`anew envs`)
seeds = 3                           # seeds 0, 1, 2 (or a list: [0, 1, 2])
train_args = {total-steps = 20000}  # flags for every run: a table, or a list of strings
report_args = ["--reps", "20000"]   # flags for the final `anew report`

[agents.dqn-fast]                   # a label; `agents = ["dqn", "rainbow"]` is the short form
agent = "dqn"                       # the agent `anew train` gets (default: the label)
train_args = {lr = 1e-3}            # this label's own flags
[agents.dqn-slow]
agent = "dqn"
train_args = {lr = 3e-4}

[grid]                              # optional: every combination, for every agent (labels get [gamma=...])
gamma = [0.99, 0.995]
"""
HELP = f"""Run a grid of agents x envs x seeds locally or on Ray, then report it.

Each run is `anew train AGENT --env-id ENV --seed S --run-dir OUT_DIR/<env>__<label>__<seed> [flags]` in its
own process (output in OUT_DIR/logs/); OUT_DIR/sweep.json records every run. Running the same sweep again
skips finished runs and retries failed ones; a complete sweep ends with `anew report` into OUT_DIR/report/.

A spec file (SPEC.toml) may hold out_dir, envs, seeds, agents, train_args, report_args, grid and command (a
list of strings replacing `anew train`); flags override it. This spec trains two learning rates x two
discounts x 3 seeds (12 runs):

{textwrap.indent(EXAMPLE_SPEC, "    ")}
Without a spec (flags alone):

    anew sweep --agents dqn rainbow --envs CartPole-v1 --seeds 0 1 2 --out-dir runs/sweep \\
        --train-args "--total-steps 20000"
"""


def joined_flag_values(argv: list[str]) -> list[str]:
    """``--train-args "--total-steps 20000"`` as ``--train-args=--total-steps 20000``: a value that starts
    with ``--`` is otherwise read as a flag of its own."""
    joined, i = [], 0
    while i < len(argv):
        if argv[i].replace("_", "-") in ("--train-args", "--report-args") and i + 1 < len(argv):
            joined.append(f"{argv[i]}={argv[i + 1]}")
            i += 2
        else:
            joined.append(argv[i])
            i += 1
    return joined
