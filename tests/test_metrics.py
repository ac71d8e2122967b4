"""Metrics and stratified-bootstrap intervals: hand-computed cases, and agreement with rliable 1.2.

rliable is slow (arch calls the statistic once per resample in Python, ~170 us of overhead per call), so
the 50,000-resample interval checks stack matrices of one shape side by side into one wide matrix:
rliable's stratified bootstrap resamples every task column on its own, so each block of columns is an
independent stratified bootstrap of its own matrix. Passing the stacks of all shapes as one list makes
rliable resample each independently, so a single rliable call (one statistic returning every block's
aggregates) checks two dozen matrices at once.

Monte-Carlo noise: an endpoint of a 95% percentile interval from 50,000 resamples has a standard error
of about 0.012 sigma (sigma = bootstrap standard deviation of the statistic), so the difference of two
independent bootstraps has about 0.017 sigma. The matrices below look like normalised scores (task
means spread over [0, 2], run-to-run noise 0.03-0.3), which keeps sigma below ~0.08, so the 0.005
tolerance is at least ~4 standard errors.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

from anew.analysis import metrics
from anew.errors import AnewError

REPS = 50_000


def normalised_like(rng: np.random.Generator, runs: int, tasks: int) -> np.ndarray:
    """Scores shaped like human-normalised results: per-task level plus run-to-run noise."""
    level = rng.uniform(0.0, 2.0, size=tasks)
    noise = rng.uniform(0.03, 0.3) * rng.standard_normal((runs, tasks))
    return level + noise


def varied_matrices(seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    shapes = [(1, 1), (1, 7), (2, 1), (2, 2), (3, 5), (5, 3), (4, 26), (10, 26), (7, 11), (12, 4)]
    shapes += [(int(rng.integers(1, 15)), int(rng.integers(1, 30))) for _ in range(14)]
    matrices = [normalised_like(rng, *shape) for shape in shapes]
    matrices.append(rng.integers(0, 3, size=(6, 9)).astype(float))  # many ties
    matrices.append(np.full((4, 5), 0.7))  # all equal
    matrices.append(rng.gamma(0.5, 3.0, size=(8, 13)))  # heavy right tail, scores above gamma=1
    return matrices


# ----------------------------------------------------------------------------- hand-computed values
def test_aggregates_on_a_hand_computed_matrix():
    scores = np.array([[1.0, 5.0, 2.0, 8.0], [3.0, 7.0, 4.0, 6.0]])  # 8 values, trim 2 from each end
    assert metrics.iqm(scores) == pytest.approx((3 + 4 + 5 + 6) / 4)
    task_means = [2.0, 6.0, 3.0, 7.0]
    assert metrics.mean(scores) == pytest.approx(np.mean(task_means))
    assert metrics.median(scores) == pytest.approx((3.0 + 6.0) / 2)
    assert metrics.median(scores[:, :3]) == pytest.approx(3.0)  # odd number of tasks
    clipped = np.minimum(scores / 4, 1.0)
    assert metrics.optimality_gap(scores / 4) == pytest.approx(1 - clipped.mean())
    assert metrics.optimality_gap(scores, gamma=5.0) == pytest.approx(5 - np.minimum(scores, 5).mean())


def test_aggregates_broadcast_over_leading_axes():
    rng = np.random.default_rng(1)
    stack = rng.random((3, 4, 5, 6))
    for aggregate in metrics.METRICS.values():
        batched = aggregate(stack)
        assert batched.shape == (3, 4)
        assert batched[2, 1] == pytest.approx(aggregate(stack[2, 1]), abs=1e-12)


def test_probability_of_improvement_by_hand():
    x = np.array([[1.0, 5.0], [3.0, 5.0]])
    y = np.array([[2.0, 5.0], [2.0, 4.0]])
    # task 0: pairs (1,2) (1,2) (3,2) (3,2) -> 2 wins of 4; task 1: (5,5) tie, (5,4) win, twice -> 3/4.
    assert metrics.probability_of_improvement(x, y) == pytest.approx((0.5 + 0.75) / 2)
    assert metrics.probability_of_improvement(x, x) == pytest.approx(0.5)


def test_performance_profiles_by_hand():
    scores = np.array([[0.0, 1.0, 2.0], [1.0, 2.0, 3.0]])
    taus = np.array([-1.0, 1.0, 2.5, 3.0])
    np.testing.assert_allclose(metrics.score_distribution(scores, taus), [1.0, 3 / 6, 1 / 6, 0.0])
    # task means 0.5, 1.5, 2.5: strictly above tau
    np.testing.assert_allclose(metrics.average_score_distribution(scores, taus), [1.0, 2 / 3, 0.0, 0.0])


def test_bad_scores_are_rejected_with_a_clear_error():
    with pytest.raises(AnewError, match="non-finite"):
        metrics.interval_estimates(np.array([[1.0, np.nan]]), reps=10)
    with pytest.raises(AnewError, match="matrix"):
        metrics.interval_estimates(np.ones(3), reps=10)
    with pytest.raises(AnewError, match="same tasks"):
        metrics.probability_of_improvement(np.ones((2, 3)), np.ones((2, 4)))


# ----------------------------------------------------------------------------- agreement with rliable
try:
    from rliable import library as rly
    from rliable import metrics as rliable_metrics
except ImportError:  # rliable is a dev dependency: pip install rliable 'pandas<3'
    rly = rliable_metrics = None
needs_rliable = pytest.mark.skipif(
    rly is None, reason="rliable not installed (pip install rliable 'pandas<3')"
)


@needs_rliable
def test_point_estimates_equal_rliable_on_varied_matrices():
    matrices = varied_matrices()
    assert len(matrices) >= 20
    rng = np.random.default_rng(7)
    for scores in matrices:
        assert metrics.iqm(scores) == pytest.approx(rliable_metrics.aggregate_iqm(scores), abs=1e-9)
        assert metrics.median(scores) == pytest.approx(rliable_metrics.aggregate_median(scores), abs=1e-9)
        assert metrics.mean(scores) == pytest.approx(rliable_metrics.aggregate_mean(scores), abs=1e-9)
        for gamma in (1.0, 0.5):
            expected = rliable_metrics.aggregate_optimality_gap(scores, gamma)
            assert metrics.optimality_gap(scores, gamma) == pytest.approx(expected, abs=1e-9)
        other = normalised_like(rng, int(rng.integers(1, 9)), scores.shape[1])
        for x, y in ((scores, other), (other, scores), (scores, scores)):
            expected = rliable_metrics.probability_of_improvement(x, y)
            assert metrics.probability_of_improvement(x, y) == pytest.approx(expected, abs=1e-9)
        taus = np.linspace(scores.min() - 0.1, scores.max() + 0.1, 9)
        np.testing.assert_allclose(
            metrics.score_distribution(scores, taus), rly.score_distributions(scores, taus), atol=1e-12
        )
        np.testing.assert_allclose(
            metrics.average_score_distribution(scores, taus),
            rly.average_score_distributions(scores, taus),
            atol=1e-12,
        )


# (runs, tasks, blocks): 22 matrices in 4 shapes checked at 50,000 resamples. rliable's cost per resample
# grows with the number of shapes (one resampled array each), not with the blocks per shape.
INTERVAL_SHAPES = [(3, 5, 6), (10, 26, 5), (7, 11, 5), (12, 4, 6)]


def grouped_aggregates(shapes: list[tuple[int, int, int]]):
    """rliable's four aggregates for every block of every stacked group, in one statistic.

    A group is ``blocks`` matrices of one shape side by side, ``(runs, blocks * tasks)``. Viewed as
    ``(runs, tasks, blocks)``, rliable's own ``aggregate_median``/``aggregate_mean`` (which reduce axis 0
    twice) give one value per block. The IQM is trim_mean's definition (sort, drop int(n/4) per end,
    average) per block, because scipy's ``trim_mean`` wrapper costs milliseconds per call; the optimality
    gap is rliable's formula with the mean taken per block. The test checks both against rliable's own
    functions block by block before bootstrapping.
    """

    def statistic(*groups: np.ndarray) -> np.ndarray:
        values = []
        for (runs, tasks, blocks), stacked in zip(shapes, groups):
            x = stacked.reshape(runs, blocks, tasks).transpose(0, 2, 1)
            flat = np.sort(x.reshape(runs * tasks, blocks), axis=0)
            cut = int(0.25 * runs * tasks)
            values += [
                flat[cut : runs * tasks - cut].mean(axis=0),
                rliable_metrics.aggregate_median(x),
                rliable_metrics.aggregate_mean(x),
                1.0 - np.mean(np.minimum(x, 1.0), axis=(0, 1)),
            ]
        return np.concatenate(values)

    return statistic


@needs_rliable
def test_intervals_match_rliable_at_50000_resamples():
    rng = np.random.default_rng(0)
    blocks = [
        [normalised_like(rng, runs, tasks) for _ in range(count)] for runs, tasks, count in INTERVAL_SHAPES
    ]
    groups = [np.concatenate(group, axis=1) for group in blocks]
    statistic = grouped_aggregates(INTERVAL_SHAPES)

    def per_block_reference(groups: list[np.ndarray]) -> np.ndarray:
        values = []
        for group_blocks in (np.split(g, shape[2], axis=1) for g, shape in zip(groups, INTERVAL_SHAPES)):
            values += [
                [rliable_metrics.aggregate_iqm(b) for b in group_blocks],
                [rliable_metrics.aggregate_median(b) for b in group_blocks],
                [rliable_metrics.aggregate_mean(b) for b in group_blocks],
                [rliable_metrics.aggregate_optimality_gap(b) for b in group_blocks],
            ]
        return np.concatenate(values)

    # The grouped statistic is rliable's metrics block by block, on the data and on a resample.
    np.testing.assert_allclose(statistic(*groups), per_block_reference(groups), atol=1e-12)
    resampled = [g[rng.integers(0, g.shape[0], g.shape), np.arange(g.shape[1])] for g in groups]
    np.testing.assert_allclose(statistic(*resampled), per_block_reference(resampled), atol=1e-12)

    # A list of arrays makes rliable use StratifiedIndependentBootstrap: each group is resampled with
    # exactly StratifiedBootstrap's indices (runs drawn per column), so one call covers every shape.
    np.random.seed(0)  # rliable draws from the global numpy RNG
    points, intervals = rly.get_interval_estimates({"all": groups}, statistic, reps=REPS)
    offset = 0
    checked = 0
    for (runs, tasks, count), group_blocks in zip(INTERVAL_SHAPES, blocks):
        for index, block in enumerate(group_blocks):
            estimates = metrics.interval_estimates(block, reps=REPS, seed=checked)
            for column, name in enumerate(metrics.METRICS):
                at = offset + column * count + index
                estimate = estimates[name]
                assert estimate.point == pytest.approx(points["all"][at], abs=1e-9), (name, block.shape)
                assert abs(estimate.low - intervals["all"][0, at]) < 0.005, (name, block.shape)
                assert abs(estimate.high - intervals["all"][1, at]) < 0.005, (name, block.shape)
            checked += 1
        offset += 4 * count
    assert checked >= 20


@needs_rliable
def test_task_bootstrap_intervals_match_rliable():
    rng = np.random.default_rng(11)
    scores = rng.uniform(0.5, 1.0, size=12) + 0.1 * rng.standard_normal((5, 12))

    # rliable's median and mean are cheap per call (its IQM goes through scipy's slow trim_mean wrapper).
    def two(x: np.ndarray) -> np.ndarray:
        return np.array([rliable_metrics.aggregate_median(x), rliable_metrics.aggregate_mean(x)])

    np.random.seed(3)
    points, intervals = rly.get_interval_estimates({"a": scores}, two, task_bootstrap=True, reps=20_000)
    estimates = metrics.interval_estimates(
        scores, {"Median": metrics.median, "Mean": metrics.mean}, reps=20_000, seed=3, task_bootstrap=True
    )
    for column, name in enumerate(("Median", "Mean")):
        assert estimates[name].point == pytest.approx(points["a"][column], abs=1e-9)
        assert abs(estimates[name].low - intervals["a"][0, column]) < 0.005
        assert abs(estimates[name].high - intervals["a"][1, column]) < 0.005


@needs_rliable
def test_probability_of_improvement_intervals_match_rliable():
    rng = np.random.default_rng(5)
    widths = [20, 12, 26]
    xs = [normalised_like(rng, 10, width) for width in widths]
    ys = [x + rng.normal(0.05, 0.2, size=(1, x.shape[1])) for x in xs]  # a slightly better agent
    ys = [y[:6] for y in ys]  # and fewer runs: the independent bootstrap allows it
    starts = np.cumsum([0] + widths)[:-1]

    def blockwise_poi(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        wins = (x.T[:, :, None] > y.T[:, None, :]) + 0.5 * (x.T[:, :, None] == y.T[:, None, :])
        return np.add.reduceat(wins.mean(axis=(1, 2)), starts) / widths

    stacked = (np.concatenate(ys, axis=1), np.concatenate(xs, axis=1))
    for index in range(len(widths)):  # the block statistic is rliable's definition
        expected = rliable_metrics.probability_of_improvement(ys[index], xs[index])
        assert blockwise_poi(*stacked)[index] == pytest.approx(expected, abs=1e-12)
    np.random.seed(9)
    points, intervals = rly.get_interval_estimates({"y>x": stacked}, blockwise_poi, reps=REPS)
    for index in range(len(widths)):
        estimate = metrics.probability_of_improvement_estimate(ys[index], xs[index], reps=REPS, seed=index)
        assert estimate.point == pytest.approx(points["y>x"][index], abs=1e-9)
        assert abs(estimate.low - intervals["y>x"][0, index]) < 0.005
        assert abs(estimate.high - intervals["y>x"][1, index]) < 0.005


@needs_rliable
def test_performance_profile_bands_match_rliable_and_the_generic_bootstrap():
    scores = normalised_like(np.random.default_rng(2), 5, 10)
    taus = np.linspace(0.0, 2.0, 11)
    np.random.seed(0)
    profiles, bands = rly.create_performance_profile({"a": scores}, taus, reps=5000)
    point, low, high = metrics.performance_profile(scores, taus, reps=5000, seed=1)
    np.testing.assert_allclose(point, profiles["a"], atol=1e-12)
    # Profiles live on a lattice of step 1/50 here; allow one step of Monte-Carlo disagreement.
    np.testing.assert_allclose(low, bands["a"][0], atol=1 / scores.size + 1e-9)
    np.testing.assert_allclose(high, bands["a"][1], atol=1 / scores.size + 1e-9)
    # The count-based fast path sees the same resamples as the generic bootstrap: identical bands.
    profile = lambda values: metrics.score_distribution(values, taus)
    samples = metrics.bootstrap_distribution(scores, {"p": profile}, reps=5000, seed=1)["p"]
    generic_low, generic_high = metrics.percentile_interval(samples)
    np.testing.assert_allclose(low, generic_low, atol=1e-12)
    np.testing.assert_allclose(high, generic_high, atol=1e-12)
    mean_point, _, _ = metrics.performance_profile(scores, taus, per_task_mean=True, reps=100)
    np.testing.assert_allclose(mean_point, rly.average_score_distributions(scores, taus), atol=1e-12)


# ----------------------------------------------------------------------------- reproducibility
def test_same_seed_is_bit_identical_and_another_seed_moves_by_noise_only():
    scores = normalised_like(np.random.default_rng(4), 10, 26)
    first = metrics.interval_estimates(scores, reps=20_000, seed=123)
    again = metrics.interval_estimates(scores, reps=20_000, seed=123)
    other = metrics.interval_estimates(scores, reps=20_000, seed=124)
    for name in metrics.METRICS:
        assert first[name] == again[name]  # dataclass equality: every float bit-identical
        assert (first[name].low, first[name].high) != (other[name].low, other[name].high)
        assert abs(first[name].low - other[name].low) < 0.005
        assert abs(first[name].high - other[name].high) < 0.005
        assert first[name].point == other[name].point
    one_thread = metrics.interval_estimates(scores, reps=20_000, seed=123, threads=1)
    assert one_thread == first  # chunk k always uses stream k: threads change nothing
    x, y = scores, scores[:, ::-1]
    assert metrics.probability_of_improvement_estimate(x, y, 5000, 1) == (
        metrics.probability_of_improvement_estimate(x, y, 5000, 1)
    )


@needs_rliable
def test_sample_efficiency_curve_points_and_final_interval():
    rng = np.random.default_rng(8)
    curves = np.stack([normalised_like(rng, 4, 6) * step for step in (0.2, 0.6, 1.0)], axis=-1)
    point, low, high = metrics.sample_efficiency_curve(curves, metrics.iqm, reps=2000, seed=5)
    expected = [rliable_metrics.aggregate_iqm(curves[:, :, t]) for t in range(3)]
    np.testing.assert_allclose(point, expected, atol=1e-12)
    final = metrics.interval_estimates(curves[:, :, -1], {"IQM": metrics.iqm}, reps=2000, seed=5)["IQM"]
    assert (low[-1], high[-1]) == (final.low, final.high)
    assert np.all(low <= point) and np.all(point <= high)


@pytest.mark.parametrize("task_bootstrap", [False, True])
def test_fused_default_metrics_equal_the_statistics_one_by_one(task_bootstrap: bool) -> None:
    # The default METRICS take a fused path with reused buffers; wrapped copies take the generic one.
    scores = np.random.default_rng(5).random((7, 11)) * 1.5
    fused = metrics.bootstrap_distribution(
        scores, metrics.METRICS, reps=3000, seed=2, task_bootstrap=task_bootstrap
    )
    wrapped = {name: functools.partial(f) for name, f in metrics.METRICS.items()}
    generic = metrics.bootstrap_distribution(
        scores, wrapped, reps=3000, seed=2, task_bootstrap=task_bootstrap
    )
    for name in metrics.METRICS:
        np.testing.assert_array_equal(fused[name], generic[name])
