"""The shared inventory demand maths (anew.inventory_demand) against direct computations."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from scipy import stats

from anew.agents import inventory_policies
from anew.envs import inventory_exact
from anew.errors import AnewError
from anew.inventory_demand import (
    DemandDistribution,
    convolve_pmf,
    demand_quantile,
    expected_period_cost,
    poisson_pmf,
    quantile,
)


def test_truncated_pmfs_sum_to_one_and_match_scipy_below_the_tail() -> None:
    for demand, exact in (
        (DemandDistribution.poisson(5.0), stats.poisson(5.0)),
        (DemandDistribution("geometric", 3.0), stats.geom(0.25, loc=-1)),
    ):
        pmf = demand.pmf()
        assert pmf.sum() == pytest.approx(1.0, abs=1e-15)
        np.testing.assert_allclose(pmf[:-1], exact.pmf(np.arange(len(pmf) - 1)), rtol=1e-12)
        assert np.dot(np.arange(len(pmf)), pmf) == pytest.approx(exact.mean(), rel=1e-10)
    np.testing.assert_array_equal(poisson_pmf(5.0), DemandDistribution.poisson(5.0).pmf())
    np.testing.assert_array_equal(DemandDistribution.from_pmf([0.2, 0.5, 0.3]).pmf(), [0.2, 0.5, 0.3])
    with pytest.raises(AnewError, match="summing to 1"):
        DemandDistribution.from_pmf([0.2, 0.2])


def test_quantiles_of_summed_demand_match_the_poisson_of_the_summed_mean() -> None:
    pmf = poisson_pmf(5.0)
    for periods in (1, 2, 4):
        total = convolve_pmf(pmf, periods)
        np.testing.assert_allclose(total[:25], stats.poisson(5.0 * periods).pmf(np.arange(25)), atol=1e-12)
        for fraction in (0.1, 0.5, 0.8, 0.95):
            expected = int(stats.poisson(5.0 * periods).ppf(fraction))
            assert demand_quantile(pmf, periods, fraction) == quantile(total, fraction) == expected
    np.testing.assert_array_equal(convolve_pmf(pmf, 0), [1.0])


def test_expected_period_cost_is_the_expectation_by_a_loop() -> None:
    pmf, p, h = poisson_pmf(3.0), 4.0, 1.0
    levels = np.array([[-2, 0, 3], [5, 8, 20]])
    by_loop = np.array(
        [
            [sum(q * (h * max(y - d, 0) + p * max(d - y, 0)) for d, q in enumerate(pmf)) for y in row]
            for row in levels
        ]
    )
    np.testing.assert_allclose(expected_period_cost(pmf, levels, p, h), by_loop, rtol=1e-12)


def test_agents_and_envs_use_the_same_functions() -> None:
    assert inventory_policies.demand_quantile is demand_quantile
    assert (
        inventory_policies.expected_period_cost
        is inventory_exact.expected_period_cost
        is expected_period_cost
    )


def test_the_shared_module_imports_neither_agents_nor_envs() -> None:
    """Beyond what ``import anew`` itself loads (the env registration table), the shared maths loads only itself:
    no agent, no env implementation."""

    def loaded(module: str) -> set[str]:
        code = f"import sys, {module}; print(sorted(m for m in sys.modules if m.startswith('anew.')))"
        return set(
            eval(
                subprocess.run(
                    [sys.executable, "-c", code], capture_output=True, text=True, check=True
                ).stdout
            )
        )

    added = loaded("anew.inventory_demand") - loaded("anew")
    assert added == {"anew.inventory_demand"}
    assert not any(
        m.startswith(("anew.agents", "anew.envs.inventory")) for m in loaded("anew.inventory_demand")
    )
