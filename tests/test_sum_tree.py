"""Sum tree: totals after batched updates, sampling frequencies (chi-square), stratification, I/O."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from anew.agents.sum_tree import SumTree, importance_weights
from anew.errors import AnewError

# Small fanout / top sizes build trees with several levels from a few slots.
SHAPES = [{"fanout": 2, "top_max": 1}, {"fanout": 4, "top_max": 3}, {"fanout": 3, "top_max": 2}, {}]


@pytest.mark.parametrize("capacity", [1, 5, 8, 1000])
@pytest.mark.parametrize("shape", SHAPES)
def test_batched_updates_match_a_plain_array(capacity, shape):
    rng = np.random.default_rng(0)
    tree, reference = SumTree(capacity, **shape), np.zeros(capacity)
    for _ in range(50):
        indices = rng.integers(0, capacity, size=rng.integers(1, 20))  # with repeats
        values = rng.random(indices.size) * 10
        tree.update(indices, values)
        for index, value in zip(indices, values):  # sequential semantics: the last write wins
            reference[index] = value
        np.testing.assert_allclose(tree.priorities, reference)
        assert tree.total == pytest.approx(reference.sum(), rel=1e-12)
    np.testing.assert_allclose(tree.get(np.arange(capacity)), reference)
    assert tree.max_priority >= reference.max()


def test_max_priority_is_the_largest_ever_set():
    tree = SumTree(4)
    assert tree.max_priority == 1.0  # Dopamine's priority for the first transitions
    tree.update([0, 1], [3.0, 0.5])
    tree.update([0], [0.1])  # lowering a priority does not lower the running max
    assert tree.max_priority == 3.0
    tree.update(2, 7.0)
    assert tree.max_priority == 7.0


def _sample_counts(priorities: np.ndarray, batch_size: int, batches: int, seed: int) -> np.ndarray:
    tree = SumTree(priorities.size, fanout=4, top_max=2)  # 3 levels, padded
    tree.update(np.arange(priorities.size), priorities)
    rng = np.random.default_rng(seed)
    samples = np.concatenate([tree.sample(batch_size, rng) for _ in range(batches)])
    return np.bincount(samples, minlength=priorities.size)


def test_sampling_frequencies_match_priorities_chi_square():
    priorities = np.array([1.0, 2.0, 0.0, 4.0, 0.5, 8.0, 3.0, 0.0, 1.5, 6.0, 2.5])  # 11: not a power of 2
    counts = _sample_counts(priorities, batch_size=32, batches=2000, seed=1)
    assert counts[priorities == 0].sum() == 0  # zero-priority slots are never drawn
    positive = priorities > 0
    expected = counts.sum() * priorities[positive] / priorities.sum()
    _, p_value = stats.chisquare(counts[positive], expected)
    assert p_value > 1e-3, f"frequencies {counts} do not match priorities {priorities} (p={p_value:.2e})"

    # The same test has power: it rejects a distribution that is off by a little.
    wrong = priorities[positive].copy()
    wrong[0] *= 1.2
    _, p_wrong = stats.chisquare(counts[positive], counts.sum() * wrong / wrong.sum())
    assert p_wrong < 1e-3


def test_stratified_sampling_puts_one_query_in_each_stratum():
    # Equal priorities over B slots and a batch of B: every slot exactly once, in order.
    tree = SumTree(16, fanout=4, top_max=2)
    tree.update(np.arange(16), np.ones(16))
    rng = np.random.default_rng(0)
    for _ in range(20):
        np.testing.assert_array_equal(tree.sample(16, rng), np.arange(16))


@pytest.mark.parametrize("shape", SHAPES)
def test_find_never_lands_on_zero_priority_slots_at_boundaries(shape):
    tree = SumTree(6, **shape)
    tree.update(np.arange(6), [1.0, 0.0, 0.0, 2.0, 0.0, 0.0])
    # Mass exactly 1.0 is the start of slot 3's interval [1, 3); just below the total is still slot 3.
    masses = np.array([0.0, 0.999, 1.0, 2.999999, 3.0 - 1e-15])
    np.testing.assert_array_equal(tree.find(masses), [0, 0, 3, 3, 3])
    # Queries pushed past the total by rounding go to the last slot with mass, not to an empty one.
    np.testing.assert_array_equal(tree.find(np.array([3.0, 3.5])), [3, 3])
    # Same when the slot with mass is the last child of its parent and later nodes are empty.
    tree.update(np.arange(6), [0.0, 1.0, 0.0, 0.0, 0.0, 0.0])
    np.testing.assert_array_equal(tree.find(np.array([0.0, 0.5, 1.0, 7.0])), [1, 1, 1, 1])


def test_a_million_slots_make_a_shallow_tree():
    tree = SumTree(1_000_000)
    assert [level.size for level in tree._levels] == [1_000_000, 31_264, 977]


def test_sampling_from_an_empty_tree_fails_clearly():
    with pytest.raises(ValueError, match="all zero"):
        SumTree(4).sample(2, np.random.default_rng(0))


def test_bad_priorities_and_indices_are_rejected():
    tree = SumTree(4)
    with pytest.raises(AnewError, match="not finite"):
        tree.update([0], [np.nan])
    with pytest.raises(AnewError, match="negative"):
        tree.update([1], [-1.0])
    with pytest.raises(IndexError):
        tree.update([4], [1.0])


def test_probabilities_are_priority_over_total():
    tree = SumTree(3)
    tree.update([0, 1, 2], [1.0, 3.0, 4.0])
    np.testing.assert_allclose(tree.probabilities([2, 0]), [0.5, 0.125])


def test_save_and_load_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    tree = SumTree(37, fanout=4, top_max=3)
    tree.update(np.arange(37), rng.random(37))
    tree.update([3], [9.0])
    tree.update([3], [0.2])
    tree.save(str(tmp_path / "sum_tree_"))
    restored = SumTree(37, fanout=4, top_max=3)
    restored.load(str(tmp_path / "sum_tree_"))
    np.testing.assert_array_equal(restored.priorities, tree.priorities)
    assert restored.total == pytest.approx(tree.total, rel=1e-12)
    assert restored.max_priority == 9.0
    # Loaded internal nodes are consistent: sampling agrees with the original tree.
    np.testing.assert_array_equal(
        restored.sample(64, np.random.default_rng(5)), tree.sample(64, np.random.default_rng(5))
    )
    with pytest.raises(AnewError, match="capacity"):
        SumTree(36).load(str(tmp_path / "sum_tree_"))


def test_importance_weights_normalised_by_max():
    probabilities = np.array([0.1, 0.2, 0.4])
    # (N p)^-beta / max: with beta = 0.5, w_i = sqrt(p_min / p_i).
    np.testing.assert_allclose(importance_weights(probabilities, 0.5), [1.0, np.sqrt(0.5), 0.5], rtol=1e-6)
    np.testing.assert_allclose(importance_weights(probabilities, 0.0), [1.0, 1.0, 1.0])
    # beta = 1 fully corrects: weight * probability is constant.
    weights = importance_weights(probabilities, 1.0)
    assert weights.max() == 1.0
    np.testing.assert_allclose(weights * probabilities, np.full(3, 0.1), rtol=1e-6)


def test_find_agrees_with_a_search_over_the_full_prefix_sum():
    rng = np.random.default_rng(4)
    priorities = rng.random(1000) * (rng.random(1000) > 0.3)  # ~30% zeros
    tree = SumTree(1000, fanout=8, top_max=10)
    tree.update(np.arange(1000), priorities)
    masses = rng.random(500) * priorities.sum()
    expected = np.searchsorted(np.cumsum(priorities), masses, side="right")
    np.testing.assert_array_equal(tree.find(masses), expected)
