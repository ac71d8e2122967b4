"""``anew convert dopamine``: Dopamine checkpoints become anew checkpoints that ``anew evaluate`` plays."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from anew.errors import AnewError
from anew.runners import registry
from anew.runners.cli import main as cli
from anew.runners.convert import ConvertArgs, convert_dopamine
from anew.runners.loading import load_agent_from_checkpoint

pytest.importorskip("ale_py")
torch.set_num_threads(1)


@pytest.fixture(scope="module")
def converted_dqn(fixtures_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("converted") / "pong"
    assert (
        cli(
            [
                "convert",
                "dopamine",
                str(fixtures_dir / "dopamine" / "jax_dqn_pong"),
                "--out",
                str(out),
                "--env-id",
                "ALE/Pong-v5",
            ]
        )
        == 0
    )
    return out


def test_checkpoint_layout_and_safe_loading(converted_dqn, fixtures_dir):
    checkpoints = sorted((converted_dqn / "checkpoints").iterdir())
    assert [c.name for c in checkpoints] == ["step_000000000892"]  # Dopamine's training_steps
    state = torch.load(checkpoints[0] / "agent.pt", weights_only=True)
    assert {"online", "target", "optimizer"} <= set(state["agent"])
    runner = json.loads((checkpoints[0] / "runner.json").read_text())
    assert runner["agent"] == "dqn" and runner["env_id"] == "ALE/Pong-v5"
    assert runner["run"]["env_protocol"] == "dopamine" and runner["agent_config"]["torso"] == "nature"
    assert runner["converted_from"]["iteration"] == 3 and runner["converted_from"]["num_actions"] == 6
    assert not (converted_dqn / "config.json").exists()  # not a run `anew resume` could continue


def test_converted_agent_gives_dopamines_q_values(converted_dqn, fixtures_dir):
    expected = np.load(fixtures_dir / "dopamine" / "jax_dqn_pong" / "q_values_expected.npz")
    agent, _, _ = load_agent_from_checkpoint(converted_dqn)
    states = torch.as_tensor(expected["states"]).permute(0, 3, 1, 2)  # anew's Atari observations
    with torch.no_grad():
        np.testing.assert_allclose(agent.online(states).numpy(), expected["q_values"], atol=1e-5)
        np.testing.assert_allclose(agent.target(states).numpy(), expected["q_values"], atol=1e-5)
    greedy = agent.act(expected["states"].transpose(0, 3, 1, 2), explore=False)
    assert greedy.shape == (8,)


def test_anew_evaluate_plays_the_converted_agent(converted_dqn, tmp_path, capsys):
    out = tmp_path / "returns.json"
    assert cli(["evaluate", str(converted_dqn), "--episodes", "1", "--json-out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["agent"] == "dqn" and result["env_id"] == "ALE/Pong-v5" and len(result["returns"]) == 1
    assert -21 <= result["returns"][0] <= 21
    assert "mean return" in capsys.readouterr().out


def test_conversion_errors_name_the_fix(fixtures_dir, tmp_path):
    source = str(fixtures_dir / "dopamine" / "jax_dqn_pong")
    with pytest.raises(AnewError, match="4"):  # Breakout has 4 actions, the Pong network 6
        convert_dopamine(ConvertArgs("dopamine", source, out=str(tmp_path / "a"), env_id="ALE/Breakout-v5"))
    with pytest.raises(AnewError, match="ALE/<Game>-v5"):
        convert_dopamine(ConvertArgs("dopamine", source, out=str(tmp_path / "b"), env_id="CartPole-v1"))
    with pytest.raises(AnewError, match="--out"):
        convert_dopamine(ConvertArgs("dopamine", source, env_id="ALE/Pong-v5"))
    assert (
        cli(["convert", "dopamine", str(tmp_path), "--out", str(tmp_path / "c"), "--env-id", "ALE/Pong-v5"])
        == 2
    )


def test_rainbow_conversion(fixtures_dir, tmp_path):
    source = fixtures_dir / "dopamine" / "jax_rainbow_breakout"
    args = ConvertArgs(
        "dopamine", str(source), out=str(tmp_path / "rainbow"), env_id="ALE/Breakout-v5", kind="rainbow"
    )
    if "rainbow" not in registry.available_agents():
        with pytest.raises(AnewError, match="--teacher-kind rainbow"):
            convert_dopamine(args)
        pytest.skip("anew's rainbow agent is not in this build; converting Rainbow waits for it")
    convert_dopamine(args)
    expected = np.load(source / "q_values_expected.npz")
    agent, _, _ = load_agent_from_checkpoint(tmp_path / "rainbow")
    with torch.no_grad():
        q = agent.online(torch.as_tensor(expected["states"]).permute(0, 3, 1, 2))
    np.testing.assert_allclose(q.numpy(), expected["q_values"], atol=1e-5)
    assert agent.config.num_atoms == 51 and not agent.config.noisy and not agent.config.dueling
    # No `anew evaluate` here: an agent that never presses FIRE plays Breakout to the 27,000-step cap.
