"""anew vs rliable: IQM + median + mean + optimality gap with 50,000 stratified-bootstrap resamples.

Run from the repository root (rliable 1.2 and pandas<3 installed):

    python benchmarks/bench_metrics.py                 # 10 runs x 26 tasks, the Atari-100k shape
    python benchmarks/bench_metrics.py --runs 5 --tasks 3 --reps 50000

Both libraries see the same matrix in one process. rliable's bootstrap draws from the global numpy RNG,
so it is seeded with ``np.random.seed``; anew takes ``seed=``. The script prints both timings, their
ratio, and both sets of intervals so the agreement is visible next to the speed.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from anew.analysis import metrics

NAMES = ("IQM", "Median", "Mean", "Optimality Gap")


def time_anew(
    scores: np.ndarray, reps: int, repeats: int, threads: int
) -> tuple[float, float, dict[str, metrics.Estimate]]:
    """Best wall time and best CPU time (summed over threads) of ``repeats`` calls."""
    wall = cpu = float("inf")
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        estimates = metrics.interval_estimates(scores, metrics.METRICS, reps=reps, seed=0, threads=threads)
        wall = min(wall, time.perf_counter() - start)
        cpu = min(cpu, time.process_time() - start_cpu)
    return wall, cpu, estimates


def time_rliable(scores: np.ndarray, reps: int) -> tuple[float, float, np.ndarray, np.ndarray]:
    from rliable import library as rly
    from rliable import metrics as rmetrics

    def four_aggregates(x: np.ndarray) -> np.ndarray:
        return np.array(
            [
                rmetrics.aggregate_iqm(x),
                rmetrics.aggregate_median(x),
                rmetrics.aggregate_mean(x),
                rmetrics.aggregate_optimality_gap(x),
            ]
        )

    np.random.seed(0)
    start, start_cpu = time.perf_counter(), time.process_time()
    points, intervals = rly.get_interval_estimates({"a": scores}, four_aggregates, reps=reps)
    return time.perf_counter() - start, time.process_time() - start_cpu, points["a"], intervals["a"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--tasks", type=int, default=26)
    parser.add_argument("--reps", type=int, default=50_000)
    parser.add_argument("--repeats", type=int, default=10, help="anew timing is the best of this many calls")
    args = parser.parse_args()

    scores = np.random.default_rng(0).gamma(2.0, 0.5, size=(args.runs, args.tasks))
    threads = metrics.default_threads()
    single_wall, single_cpu, _ = time_anew(scores, args.reps, args.repeats, threads=1)
    threaded_wall, threaded_cpu, estimates = time_anew(scores, args.reps, args.repeats, threads=threads)
    rliable_wall, rliable_cpu, points, intervals = time_rliable(scores, args.reps)

    print(f"matrix {args.runs} runs x {args.tasks} tasks, {args.reps} resamples, 4 aggregates")
    print(f"{'metric':<15} {'anew point':>11} {'rliable point':>14} {'anew CI':>21} {'rliable CI':>21}")
    worst_point = worst_ci = 0.0
    for index, name in enumerate(NAMES):
        e = estimates[name]
        low, high = intervals[0, index], intervals[1, index]
        worst_point = max(worst_point, abs(e.point - points[index]))
        worst_ci = max(worst_ci, abs(e.low - low), abs(e.high - high))
        anew_ci, rliable_ci = f"[{e.low:.4f}, {e.high:.4f}]", f"[{low:.4f}, {high:.4f}]"
        print(f"{name:<15} {e.point:>11.5f} {points[index]:>14.5f} {anew_ci:>21} {rliable_ci:>21}")
    print(f"max |point difference| {worst_point:.2e}, max |interval endpoint difference| {worst_ci:.4f}")
    print(f"{'':18} {'wall s':>8} {'CPU s':>8}   (CPU time is robust to other load on the machine)")
    print(f"{'anew, 1 thread':18} {single_wall:8.3f} {single_cpu:8.3f}   best of {args.repeats}")
    print(
        f"{f'anew, {threads} threads':18} {threaded_wall:8.3f} {threaded_cpu:8.3f}   best of {args.repeats}; the default"
    )
    print(f"{'rliable':18} {rliable_wall:8.3f} {rliable_cpu:8.3f}")
    print(
        f"speed-up, wall: {rliable_wall / single_wall:.0f}x on 1 thread, {rliable_wall / threaded_wall:.0f}x with "
        f"{threads} threads; CPU work: {rliable_cpu / single_cpu:.0f}x less"
    )


if __name__ == "__main__":
    main()
