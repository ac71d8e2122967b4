"""``anew solve``: the calculator's exact rows and its JSON output (small simulations to stay fast)."""

from __future__ import annotations

import json

import pytest

from anew.errors import AnewError
from anew.runners.solve import main

FAST = ["--envs", "200", "--periods", "500", "--warmup", "100", "--json"]


def run(capsys, *argv: str) -> dict:
    assert main([*argv, *FAST]) == 0
    return json.loads(capsys.readouterr().out)


def rows_by_policy(result: dict) -> dict[str, dict]:
    return {row["policy"]: row for row in result["rows"]}


def test_lost_sales_table(capsys) -> None:
    result = run(capsys, "lost-sales", "--lead-time", "1", "--p", "4")
    rows = rows_by_policy(result)
    assert rows["optimal"]["average_cost"] == pytest.approx(4.0407, abs=1e-3)
    assert rows["base-stock (newsvendor level)"]["parameters"] == {"S": 13}
    for row in result["rows"]:  # nothing beats the optimum by more than simulation noise
        se = row["standard_error"] or 0.0
        assert row["average_cost"] >= rows["optimal"]["average_cost"] - 4 * se - 1e-9
    assert {"myopic-1", "myopic-2", "capped base-stock (best S, r)", "constant order (best r)"} <= set(rows)


def test_backlog_and_s_S_tables(capsys) -> None:
    backlog = rows_by_policy(run(capsys, "backlog", "--lead-time", "2", "--p", "4"))
    optimal = backlog["optimal = base-stock (newsvendor level)"]
    assert optimal["parameters"] == {"S": 18} and optimal["average_cost"] == pytest.approx(5.5880, abs=1e-4)
    s_S = rows_by_policy(run(capsys, "s-S", "--K", "5", "--p", "4"))
    assert s_S["optimal (s, S)"]["parameters"] == {"s": 3, "S": 9}
    assert s_S["optimal (s, S)"]["average_cost"] == pytest.approx(7.3589, abs=1e-4)


def test_table_output_and_bad_input(capsys) -> None:
    assert main(["backlog", "--lead-time", "1", "--envs", "50", "--periods", "300", "--warmup", "100"]) == 0
    assert "optimal = base-stock" in capsys.readouterr().out
    with pytest.raises(AnewError, match="lead time"):
        main(["lost-sales", "--lead-time", "0"])
    with pytest.raises(AnewError, match="costs must be positive"):
        main(["backlog", "--p", "0"])
