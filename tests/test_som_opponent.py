"""SOM's ``--opponent PATH``: a saved SOM-family run plays the other seat, as it was evaluated and never trained;
its moves are its own choices, its estimates are part of an exact state round trip, and a path that is not a
SOM-family run of the game is one clear error."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers_som import build, drive, state_bytes

import anew
from anew.agents.som import SOMAgent
from anew.errors import AnewError
from anew.runners.cli import main

COIN_GAME = "anew/CoinGame-SOM-v0"
SMALL_FLAGS = ["--torso", "mlp", "--hidden", "16", "--view-radius", "2"]  # helpers_som.SMALL


@pytest.fixture(scope="module")
def saved_som(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A short self-play SOM run (its weights barely trained: what matters is that they are its own)."""
    run_dir = tmp_path_factory.mktemp("opponent") / "som"
    argv = ["train", "som", "--env-id", COIN_GAME, "--seed", "1", "--num-envs", "4", "--total-steps", "160",
            "--eval-every", "160", "--eval-episodes", "4", *SMALL_FLAGS, "--run-dir", str(run_dir)]  # fmt: skip
    assert main(argv) == 0
    return run_dir


def with_opponent(path: Path, seed: int, seat: int) -> SOMAgent:
    return build(COIN_GAME, seed=seed, load_agent=anew.load_agent, opponent=str(path), seat=seat)[0]


def test_the_saved_agent_plays_the_other_seat_and_is_not_trained(saved_som: Path) -> None:
    agent, envs = build(COIN_GAME, seed=0, load_agent=anew.load_agent, opponent=str(saved_som), seat=0)
    opponent = agent.opponents[True]
    assert isinstance(opponent, SOMAgent) and agent.controlled.tolist() == [True, False]
    before = {k: v.clone() for k, v in opponent.network.state_dict().items()}
    drive(agent, envs, 45)  # two episodes: two updates of the agent
    assert agent.updates == 2
    for name, tensor in opponent.network.state_dict().items():
        assert torch.equal(tensor, before[name]), name
    # seat 1's move is the saved agent's own choice: the same draw from a copy of it gives the same move
    obs, info = envs.reset(seed=3)
    agent.episode_start(np.ones(4, dtype=bool), explore=False)
    copy = anew.load_agent(saved_som)
    copy.episode_start(np.ones(4, dtype=bool), explore=False)
    rng, replay = np.random.default_rng(5), np.random.default_rng(5)
    played = agent.choose(obs, False, rng, info)
    replay.random((4, 2))  # the agent's own draw comes first
    np.testing.assert_array_equal(played[:, 1], copy.choose(obs, False, replay, info)[:, 1])


def test_state_round_trip_with_a_saved_opponent(saved_som: Path) -> None:
    agent, envs = build(COIN_GAME, seed=2, load_agent=anew.load_agent, opponent=str(saved_som), seat=1)
    drive(agent, envs, 27)  # mid-episode: the opponent's estimates of the agent's goal are state too
    assert "opponent_episodes" in agent.state_dict()
    twin = with_opponent(saved_som, seed=9, seat=1)
    twin.load_state_dict(torch.load(io.BytesIO(state_bytes(agent)), weights_only=True))
    assert state_bytes(twin) == state_bytes(agent)
    obs, info = envs.reset(seed=1)
    rng = [np.random.default_rng(0), np.random.default_rng(0)]
    moves = [a.act(obs, explore=True, rng=r, info=info) for a, r in zip((agent, twin), rng, strict=True)]
    np.testing.assert_array_equal(*moves)


def test_an_opponent_that_does_not_fit_is_one_clear_error(tmp_path: Path, capsys) -> None:
    base = ["train", "som", "--env-id", COIN_GAME, "--total-steps", "40", "--num-envs", "4"]
    assert main([*base, "--opponent", str(tmp_path / "missing"), "--run-dir", str(tmp_path / "a")]) == 2
    assert "missing" in capsys.readouterr().err and not (tmp_path / "a").exists()
    dqn = tmp_path / "dqn"
    assert main(["train", "dqn", "--total-steps", "200", "--learning-starts", "100", "--eval-episodes", "1",
                 "--run-dir", str(dqn)]) == 0  # fmt: skip
    capsys.readouterr()
    assert main([*base, "--opponent", str(dqn), "--run-dir", str(tmp_path / "b")]) == 2
    assert "is not a SOM-family agent" in capsys.readouterr().err and not (tmp_path / "b").exists()
    with pytest.raises(AnewError, match="cannot load saved agents"):
        build(COIN_GAME, opponent=str(dqn))
