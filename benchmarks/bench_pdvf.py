"""PD-VF on Spaceship against PPOall, PPOenv and the no-DAgger ablation, each through `anew train pdvf`.

    python benchmarks/bench_pdvf.py --seeds 1 2 3 --parallel 2 --out runs/bench_pdvf
    python benchmarks/bench_pdvf.py --out runs/bench_pdvf --summary-only
    python benchmarks/bench_pdvf.py --out runs/bench_pdvf --summary-only --best-of-both 3

Runs (skipping run directories that already hold an eval.json): PD-VF (preset ``spaceship``), the ablation
(``nodagger``), PPOall (``ppoall``) and PPOenv (``ppoenv``, one run per test env). Prints each method's mean
test return per test env and over envs 15-19 (mean and range over seeds), the bars of the reference notes
section 4, and each run's wall time.

``--best-of-both N`` also scores each PD-VF run (and ablation) by the reference's test protocol
(``eval_pdvf.py``): per episode the decoded policy is rolled out with +u and with -u and the better return
counts. anew's own evaluation instead plays one episode with the sign its ``signs`` phase chose, which is
what a deployed agent gets; the reference's number is an upper bound on it. N episodes per probe policy,
sign and test env, each in a fresh env (theta redrawn in its bucket, as the reference's rollouts do).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

TEST_ENVS = range(15, 20)
METHODS = ("pdvf", "nodagger", "ppoall", "ppoenv")


def commands(seed: int, out: Path) -> list[tuple[str, Path, list[str]]]:
    """(method, run dir, argv) of every run of one seed."""
    base = ["anew", "train", "pdvf", "--env-id", "anew/Spaceship-v0", "--seed", str(seed)]
    runs = [(m, out / f"{m}_s{seed}", ["--preset", "spaceship" if m == "pdvf" else m]) for m in METHODS[:3]]
    runs += [
        ("ppoenv", out / f"ppoenv{k}_s{seed}", ["--preset", "ppoenv", "--target-env", str(k)])
        for k in TEST_ENVS
    ]
    return [(m, d, [*base, *flags, "--run-dir", str(d)]) for m, d, flags in runs]


def run(job: tuple[str, Path, list[str]]) -> None:
    _, run_dir, argv = job
    if (run_dir / "eval.json").exists():
        return
    start = time.monotonic()
    log = run_dir.with_suffix(".log")
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as handle:
        code = subprocess.call(argv, stdout=handle, stderr=subprocess.STDOUT)
    (run_dir.parent / f"{run_dir.name}.wall").write_text(f"{time.monotonic() - start:.0f}\n")
    print(f"{run_dir.name}: exit {code}, {time.monotonic() - start:.0f} s", flush=True)


def per_env_means(run_dir: Path) -> dict[int, float]:
    document = json.loads((run_dir / "eval.json").read_text())
    return {int(e["extra"]["env_index"]): float(np.mean(e["returns"])) for e in document["evaluations"]}


def summary(out: Path, seeds: list[int]) -> dict[str, float]:
    """Print the table; returns each method's mean over seeds of the mean over test envs."""
    overall = {}
    for method in METHODS:
        rows = []
        for seed in seeds:
            dirs = (
                [out / f"ppoenv{k}_s{seed}" for k in TEST_ENVS]
                if method == "ppoenv"
                else [out / f"{method}_s{seed}"]
            )
            if not all((d / "eval.json").exists() for d in dirs):
                continue
            means: dict[int, float] = {}
            for d in dirs:
                means.update(per_env_means(d))
            rows.append([means[k] for k in TEST_ENVS])
        if not rows:
            continue
        table = np.array(rows)
        per_seed = table.mean(1)
        overall[method] = float(per_seed.mean())
        envs = " ".join(f"{v:.2f}" for v in table.mean(0))
        print(
            f"{method:9s} seeds {len(rows)}  envs 15-19: {envs}  mean {per_seed.mean():.3f} "
            f"(seeds {' '.join(f'{v:.3f}' for v in per_seed)})"
        )
    if {"pdvf", "ppoall", "ppoenv", "nodagger"} <= set(overall):
        p = overall["pdvf"]
        print(
            f"bars: PD-VF >= 0.85: {p >= 0.85}; >= PPOall + 0.2: {p >= overall['ppoall'] + 0.2}; "
            f">= PPOenv - 0.1: {p >= overall['ppoenv'] - 0.1}; no-DAgger {overall['nodagger']:.3f} vs {p:.3f}"
        )
    walls = sorted(out.glob("*.wall"))
    if walls:
        print("wall time (s): " + ", ".join(f"{w.stem} {w.read_text().strip()}" for w in walls))
    return overall


def best_of_both(run_dir: Path, copies: int) -> float:
    """The reference's test score of a PD-VF run: mean over test envs of the better sign's return."""
    import torch

    from anew.runners.loading import load_agent_from_checkpoint, make_run_envs
    from anew.runners.run_args import RunArgs

    torch.set_num_threads(1)
    agent, runner_state, _ = load_agent_from_checkpoint(run_dir)
    run = RunArgs(**runner_state["run"])

    def make_envs(num: int, seed: int, **options):
        return make_run_envs(
            run, training=False, num_envs=num, seed=seed, env_kwargs=run.env_kwargs | options
        )

    probes = len(agent.library().probes)
    scores = []
    for env in TEST_ENVS:
        rows = agent.pipeline.play_both_signs(env, copies, 777_000 + env, make_envs)
        scores.append(rows["returns"].view(copies, probes, 2).max(dim=2).values.mean().item())
    return float(np.mean(scores))


def reference_protocol(out: Path, seeds: list[int], copies: int) -> None:
    for method in ("pdvf", "nodagger"):
        runs = [
            out / f"{method}_s{seed}" for seed in seeds if (out / f"{method}_s{seed}" / "eval.json").exists()
        ]
        if runs:
            scores = [best_of_both(run, copies) for run in runs]
            print(f"{method:9s} best of both signs (reference protocol): mean {np.mean(scores):.3f} "
                  f"(seeds {' '.join(f'{v:.3f}' for v in scores)})")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--parallel", type=int, default=2, help="runs at once (each uses one thread)")
    parser.add_argument("--out", type=Path, default=Path("runs/bench_pdvf"))
    parser.add_argument("--summary-only", action="store_true")
    parser.add_argument("--best-of-both", type=int, default=0, metavar="N",
                        help="also score PD-VF by the reference's protocol, N episodes per probe and sign")  # fmt: skip
    args = parser.parse_args()
    if not args.summary_only:
        jobs = [job for seed in args.seeds for job in commands(seed, args.out)]
        with ThreadPoolExecutor(args.parallel) as pool:
            list(pool.map(run, jobs))
    summary(args.out, args.seeds)
    if args.best_of_both:
        reference_protocol(args.out, args.seeds, args.best_of_both)
    return 0


if __name__ == "__main__":
    sys.exit(main())
