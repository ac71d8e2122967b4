"""SOM (agents/som*.py): the turn-based advantages and losses, the inference (only the estimate moves, rows are
independent, it recovers a goal from a scripted trajectory), the perspective swap the games define, estimates
reset at episode starts, the baselines, state round trips, seeding and evaluation isolation."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from helpers_som import GAMES, SMALL, build, drive, state_bytes
from torch import nn

from anew.agents.core import AgentSpec
from anew.agents.policy_losses import gae_advantages
from anew.agents.som import SOMAgent
from anew.agents.som_episodes import QuarterAccuracy
from anew.agents.som_inference import other_board, som_update, split_goal, uninformative
from anew.agents.som_losses import actor_critic_losses, turn_based_advantages
from anew.agents.som_net import SOMNetwork, SOMOutput, centred_shape, egocentric
from anew.envs.coin_game import CoinGameSim
from anew.envs.multiagent import make_team_env, make_team_sim
from anew.envs.som_grid import OFFSETS
from anew.errors import AnewError


# ---------------------------------------------------------------- pure maths
def test_turn_based_advantages_are_monte_carlo_returns_at_lambda_one() -> None:
    rng = np.random.default_rng(0)
    steps, gamma = 9, 0.9
    rewards, values = (
        torch.as_tensor(rng.normal(size=(steps, 2))),
        torch.as_tensor(rng.normal(size=(steps, 2))),
    )
    decision = torch.as_tensor(np.array([[t % 2 == 0, t % 2 == 1] for t in range(steps)]))
    done = torch.zeros(steps, 2, dtype=torch.bool)
    done[4], done[8] = True, True
    advantages = turn_based_advantages(
        rewards, values, decision, done, done, torch.zeros(steps, 2), gamma, 1.0
    )
    for column in range(2):
        for t in range(steps):
            if not decision[t, column]:
                assert advantages[t, column] == 0
                continue
            end = 4 if t <= 4 else 8
            ret = sum(gamma ** (k - t) * float(rewards[k, column]) for k in range(t, end + 1))
            assert float(advantages[t, column]) == pytest.approx(ret - float(values[t, column]), abs=1e-9)


def test_turn_based_advantages_equal_gae_over_alternating_turns() -> None:
    # Alternate turns: the player's own sequence is GAE with gamma^2, lambda^2 and two steps' rewards per turn.
    rng = np.random.default_rng(1)
    steps, gamma, lam = 12, 0.95, 0.8
    rewards, values = (
        torch.as_tensor(rng.normal(size=(steps, 1))),
        torch.as_tensor(rng.normal(size=(steps, 1))),
    )
    decision = torch.as_tensor(np.arange(steps) % 2 == 0)[:, None]
    done = torch.zeros(steps, 1, dtype=torch.bool)
    done[-1] = True
    ours = turn_based_advantages(rewards, values, decision, done, done, torch.zeros(steps, 1), gamma, lam)
    pair_rewards = rewards[0::2] + gamma * rewards[1::2]
    own_values = values[0::2]
    next_values = torch.cat([own_values[1:], torch.zeros(1, 1)])
    ended = torch.zeros_like(own_values)
    ended[-1] = 1.0
    expected = gae_advantages(pair_rewards, own_values, next_values, ended, ended, gamma**2, lam**2)
    torch.testing.assert_close(ours[0::2], expected)


def test_truncation_bootstraps_and_termination_does_not() -> None:
    rewards, values = torch.zeros(2, 1), torch.zeros(2, 1)
    decision, done = torch.ones(2, 1, dtype=torch.bool), torch.tensor([[False], [True]])
    bootstrap = torch.full((2, 1), 5.0)
    cut = turn_based_advantages(rewards, values, decision, torch.zeros_like(done), done, bootstrap, 1.0, 1.0)
    ended = turn_based_advantages(rewards, values, decision, done, done, bootstrap, 1.0, 1.0)
    assert cut[1, 0] == 5.0 and ended[1, 0] == 0.0


def test_actor_critic_loss_has_the_a2c_gradient_at_the_acting_weights() -> None:
    logits = torch.randn(6, 5, requires_grad=True)
    actions, advantages = torch.tensor([0, 1, 2, 3, 4, 0]), torch.randn(6)
    mask = torch.tensor([True, True, False, True, True, True])
    old = torch.log_softmax(logits, -1).gather(1, actions[:, None])[:, 0].detach()
    losses = actor_critic_losses(logits, actions, old, torch.zeros(6), advantages, torch.zeros(6), mask, 0.2)
    (grad,) = torch.autograd.grad(losses.policy, logits)
    chosen = torch.log_softmax(logits, -1).gather(1, actions[:, None])[:, 0]
    a2c = -(advantages * chosen)[mask].mean()
    (expected,) = torch.autograd.grad(a2c, logits)
    torch.testing.assert_close(grad, expected)


def test_quarter_accuracy_splits_each_episode_by_its_own_length() -> None:
    tracker = QuarterAccuracy(2)
    for t in range(8):  # game 0: one 8-step episode (slot 0 counted); game 1: a 4-step one, then 4 more steps
        right = t in (0, 3)
        tracker.record(np.array([[t >= 4, True], [right, right]]), np.array([[True, False], [True, True]]))
        if t == 3:
            tracker.finish(np.array([False, True]))
    tracker.finish(np.array([True, False]))  # game 1's second episode has not ended: not counted
    assert tracker.take() == {"inference_accuracy_q1": 2 / 4, "inference_accuracy_q2": 0.0,
                              "inference_accuracy_q3": 2 / 4, "inference_accuracy_q4": 4 / 4}  # fmt: skip
    assert tracker.take() == {}


def test_egocentric_view_centres_the_viewer_and_marks_the_grid() -> None:
    board = torch.zeros(1, 3, 4, 5)
    board[0, 0, 1, 3] = 1.0  # the viewer
    board[0, 1, 0, 0] = 1.0  # something one row up and three columns left of it
    view = egocentric(board, radius=2)
    assert view.shape == (1, 4, 5, 5)
    assert view[0, 0, 2, 2] == 1 and view[0, 0].sum() == 1
    assert view[0, 1].sum() == 0  # three columns away: outside a radius-2 window
    wide = egocentric(board)  # radius 0: the whole board from any cell
    assert wide.shape == (1, 4, 9, 9) and wide[0, 1, 4 - 1, 4 - 3] == 1
    assert wide[0, 3].sum() == 4 * 5  # the on-grid plane covers the board's cells


# ---------------------------------------------------------------- inference
def goal_seeking_network(
    num_goals: int = 3, radius: int = 3, own: float = 3.0, other: float = 1.5
) -> SOMNetwork:
    """A scripted coin-game policy in SOM's own network (bilinear torso, no hidden layer): each coin pulls the
    player towards it, by ``own``/distance if it has the colour of the first goal input and ``other``/distance if
    it has the colour of the second (the goal the player believes the other has)."""
    board = (2 + num_goals, 8, 8)
    network = SOMNetwork(board, num_goals, num_goals, 5, torch.Generator().manual_seed(0), torso="bilinear",
                         hidden=(), view_radius=radius)  # fmt: skip
    channels, side, _ = centred_shape(board, radius)
    flat, sides = channels * side * side, 2 * num_goals
    weight = torch.zeros(5, flat + sides + flat * sides)
    for row in range(side):
        for col in range(side):
            dr, dc = row - radius, col - radius
            if dr == dc == 0:
                continue
            moves = [a for a, (r, c) in enumerate(OFFSETS[:4].tolist()) if r * dr > 0 or c * dc > 0]
            for colour in range(num_goals):
                cell = (2 + colour) * side * side + row * side + col
                for slot, pull in ((colour, own), (num_goals + colour, other)):
                    weight[moves, flat + sides + cell * sides + slot] = pull / (abs(dr) + abs(dc))
    with torch.no_grad():
        network.policy.weight.copy_(weight)
        network.policy.bias.zero_()
    return network


def coin_layout(goals: tuple[int, int]) -> dict:
    """Player 0 top left; player 1 in the middle with coins of colour 1 to its left and colour 2 to its right."""
    coins = [[3, 1, 1], [4, 0, 1], [5, 1, 1], [3, 7, 2], [4, 7, 2], [5, 6, 2], [0, 3, 0], [7, 3, 0]]
    return {"goals": list(goals), "players": [[0, 0], [4, 4]], "coins": coins}


@pytest.mark.parametrize("other_goal", [1, 2])
def test_inference_recovers_the_goal_from_a_scripted_trajectory(other_goal: int) -> None:
    """The other walks towards its coins (left for colour 1, right for colour 2) for three moves; the observer
    (goal 0) runs the frozen scripted network from the other's point of view and names the right goal."""
    network = goal_seeking_network()
    sim = CoinGameSim(1, seed=0)
    sim.reset(options={"layout": coin_layout((0, other_goal))})
    swap, logits = torch.as_tensor(sim.swap_index), torch.zeros(1, 3)
    step = 3 if other_goal == 2 else 2  # right or left
    for _ in range(3):
        sim.step(np.array([[4, 4]]))  # player 0 stands
        obs = torch.as_tensor(sim.observe())
        goal = split_goal(obs, 3)[1]
        logits = som_update(network, other_board(obs[:, 0], swap, 3), goal[:, 0], logits, torch.tensor([step]),
                            steps=5, lr=0.1)  # fmt: skip
        sim.step(np.array([[4, step]]))
    assert int(logits.argmax()) == other_goal
    assert float(torch.softmax(logits, -1)[0, other_goal]) > 0.5


def test_inference_changes_only_the_estimate() -> None:
    network = goal_seeking_network()
    before = {name: p.detach().clone() for name, p in network.named_parameters()}
    sim = CoinGameSim(3, seed=1)
    obs = torch.as_tensor(sim.observe())
    board, goal = split_goal(obs, 3)
    logits = torch.zeros(3, 3)
    updated = som_update(network, board[:, 1], goal[:, 0], logits, torch.tensor([0, 1, 3]), steps=5, lr=0.1)
    assert not torch.equal(updated, logits) and not updated.requires_grad
    for name, p in network.named_parameters():
        assert torch.equal(p, before[name]) and p.grad is None, name
    # rows are independent problems: one game's update does not depend on the others in the batch
    alone = som_update(network, board[1:2, 1], goal[1:2, 0], logits[1:2], torch.tensor([1]), steps=5, lr=0.1)
    torch.testing.assert_close(alone, updated[1:2])


@pytest.mark.parametrize("env_id", GAMES)
def test_the_other_board_is_the_games_perspective_swap(env_id: str) -> None:
    sim = make_team_sim(env_id, 6, seed=2)
    for _ in range(5):
        sim.step(sim.rng.integers(0, 5, (6, 2)))
    obs = sim.observe()
    goals = sim.agent_facts()["num_goals"]
    swap = torch.as_tensor(sim.agent_facts()["swap_index"])
    for player in range(2):
        seen = other_board(torch.as_tensor(obs[:, player]), swap, goals)
        torch.testing.assert_close(seen, torch.as_tensor(sim.split_observation(obs[:, 1 - player])[0]))
        torch.testing.assert_close(
            seen, torch.as_tensor(sim.split_observation(sim.swap_perspective(obs[:, player]))[0])
        )


# ---------------------------------------------------------------- the agent
def test_estimates_start_uniform_move_when_the_other_moves_and_reset_per_mode() -> None:
    agent, envs = build()
    obs, info = envs.reset(seed=0)
    agent.episode_start(np.ones(4, dtype=bool), explore=True)
    agent.act(obs, explore=True, info=info)  # player 0 moves: player 1's estimate moves, player 0's does not
    train = agent.episodes[True].logits
    assert torch.all(train[:, 0] == 0) and torch.all(train[:, 1].abs().sum(-1) > 0)
    agent.episode_start(np.ones(4, dtype=bool), explore=False)
    agent.act(obs, explore=False, rng=np.random.default_rng(0), info=info)
    kept = train.clone()
    agent.episode_start(np.array([True, False, True, False]), explore=True)
    assert torch.all(train[[0, 2]] == 0) and torch.equal(train[[1, 3]], kept[[1, 3]])
    assert agent.episodes[False].logits[:, 1].abs().sum() > 0  # evaluation's estimates are its own


@pytest.mark.parametrize("other_model", ["som", "nom", "tog", "ipp", "spp"])
def test_every_other_model_learns_from_whole_episodes(other_model: str) -> None:
    agent, envs = build(other_model=other_model, games=3)
    before = [p.detach().clone() for p in agent.parameters()]
    drive(agent, envs, 20)  # one coin-game episode: one update
    assert agent.updates == 1 and len(agent.buffer) == 0
    assert any(not torch.equal(a, b) for a, b in zip(before, agent.parameters(), strict=True))
    width = agent.network.other_width
    assert width == {"som": 3, "tog": 3, "spp": 5}.get(other_model, 0)
    assert (agent.network.other_action is not None) == (other_model == "ipp")


@pytest.mark.parametrize("distinct", [False, True])
def test_tog_feeds_the_true_other_goal_centred_or_not(distinct: bool) -> None:
    """Raw: the other's one-hot goal. Centred: minus the uniform over the goals it may be (all, or all but the
    viewer's own with distinct goals), so SOM's uniform starting estimate is fed as zeros."""
    for centre in (False, True):
        agent, envs = build(other_model="tog", centre_goal_input=centre, distinct_goals=distinct)
        obs, info = envs.reset(seed=0)
        views, goal = agent.views(torch.as_tensor(obs))
        other = agent.other_input(views, goal, agent.episodes[True].logits, torch.as_tensor(info["goal"]))
        uniform = (1 - goal) / 2 if distinct else torch.full_like(goal, 1 / 3)
        expected = goal[:, [1, 0]] - (uniform if centre else 0)
        torch.testing.assert_close(other, expected)
    som, _ = build(other_model="som", centre_goal_input=True, distinct_goals=distinct)
    start = som.other_input(views, goal, som.episodes[True].logits, None)
    torch.testing.assert_close(start, torch.zeros_like(start))


def test_centred_inference_feeds_the_other_what_it_would_be_fed() -> None:
    """In the inference the other-goal slot holds the observer's goal centred as the other's own input would be
    (its own goal being the estimate): at a one-hot estimate of goal g that is exactly TOG's centred input."""

    class Recorder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.linear, self.seen = nn.Linear(6, 5), []

        def view(self, board: torch.Tensor) -> torch.Tensor:
            return board

        def forward(self, board, own_goal, other, with_value=True, viewed=False) -> SOMOutput:
            self.seen.append((own_goal.detach().clone(), other.detach().clone()))
            return SOMOutput(self.linear(torch.cat([own_goal, other], -1)), None, None)

    recorder, observer_goal = Recorder(), torch.tensor([[1.0, 0.0, 0.0]])
    sharp = torch.tensor([[-30.0, 30.0, -30.0]])  # the estimate: goal 1, all but surely
    som_update(recorder, torch.zeros(1, 2, 3, 3), observer_goal, sharp, torch.tensor([2]), steps=1, lr=0.1,
               distinct_goals=True, centre_goal_input=True)  # fmt: skip
    own, other = recorder.seen[0]
    torch.testing.assert_close(own, torch.tensor([[0.0, 1.0, 0.0]]))
    torch.testing.assert_close(other, observer_goal - uninformative(own, True))
    torch.testing.assert_close(other, torch.tensor([[0.5, 0.0, -0.5]]))  # me: 1 - 1/2; the third goal: -1/2


def test_random_opponent_moves_uniformly_and_is_not_trained() -> None:
    agent, envs = build(opponent="random", games=64)
    seen = np.concatenate(drive(agent, envs, 20))
    counts = np.bincount(seen[:, 1], minlength=5)
    assert counts.min() > 0.15 * len(seen)  # uniform over 5 moves (20% each)
    assert not agent.controlled[1]


def test_a_seated_agent_infers_from_the_moves_played_not_its_own_choice() -> None:
    agent, envs = build(opponent="random", seat=1)  # plays slot 1; slot 0 moves first
    obs, info = envs.reset(seed=0)
    estimates = []
    for move in (2, 3):  # the opponent in slot 0 went left, or right
        agent.episode_start(np.ones(4, dtype=bool), explore=False)
        played = agent.choose(obs, False, np.random.default_rng(0), info)
        played[:, 0] = move
        agent.witness(obs, played, False, info)
        estimates.append(agent.episodes[False].logits.clone())
    assert torch.all(estimates[0][:, 0] == 0)  # slot 0 is not this agent's: no estimate kept there
    assert not torch.equal(estimates[0][:, 1], estimates[1][:, 1])


def test_bad_settings_are_rejected() -> None:
    with pytest.raises(AnewError, match="--opponent"):
        build(opponent="checkpoints/x")
    with pytest.raises(AnewError, match="--other-model"):
        build(other_model="oracle")
    envs = make_team_env("anew/Levers-v0", 2, seed=0)
    spec = AgentSpec(envs.single_observation_space, envs.single_action_space, 2, 0, "cpu", envs.agents)
    with pytest.raises(AnewError, match="two-player hidden-goal"):
        SOMAgent(SMALL, spec)


@pytest.mark.parametrize("env_id", GAMES)
def test_same_seed_same_actions_and_state_round_trip(env_id: str) -> None:
    runs = [drive(*build(env_id, seed=seed), 45) for seed in (3, 3, 4)]
    for a, b in zip(runs[0], runs[1], strict=True):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(runs[0], runs[2], strict=True))
    agent, envs = build(env_id, seed=5)
    drive(agent, envs, 27)  # mid-episode: estimates, a partial buffer and the accuracy records are state
    twin, _ = build(env_id, seed=99)
    twin.load_state_dict(torch.load(io.BytesIO(state_bytes(agent)), weights_only=True))
    assert state_bytes(twin) == state_bytes(agent)
    obs, info = envs.reset(seed=1)
    for a in (agent, twin):
        a.episode_start(np.array([True, False, True, False]), explore=True)
    np.testing.assert_array_equal(agent.act(obs, info=info), twin.act(obs, info=info))


def test_evaluation_leaves_training_untouched() -> None:
    agent, envs = build(seed=7)
    twin, twin_envs = build(seed=7)
    drive(agent, envs, 30)
    drive(twin, twin_envs, 30)
    evaluation = make_team_env(GAMES[0], 5, seed=11)
    obs, info = evaluation.reset(seed=11)
    rng, torch_state = np.random.default_rng(0), torch.get_rng_state()
    agent.episode_start(np.ones(5, dtype=bool), explore=False)
    for _ in range(25):
        obs, _, terminated, truncated, info = evaluation.step(agent.act(obs, False, rng=rng, info=info))
        agent.episode_start(terminated | truncated, explore=False)
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert state_bytes(agent) == state_bytes(twin)
    assert set(agent.evaluation_measures()) == {f"inference_accuracy_q{q}" for q in range(1, 5)}
    assert agent.evaluation_measures() == {}  # taken: the next evaluation starts afresh
    for a, b in zip(drive(agent, envs, 20, seed=2), drive(twin, twin_envs, 20, seed=2), strict=True):
        np.testing.assert_array_equal(a, b)


def test_the_agents_inference_names_the_goal_of_a_goal_seeking_player() -> None:
    """Self-play with the scripted goal-seeking network in the agent: by the last quarter of the episodes the
    argmax estimate names the other's goal far more often than chance (50%: the goals always differ)."""
    agent, envs = build(games=64, hidden=(), torso="bilinear", view_radius=3, eval_sample=False)
    agent.network.load_state_dict(goal_seeking_network().state_dict(), strict=False)
    obs, info = envs.reset(seed=3)
    agent.episode_start(np.ones(64, dtype=bool), explore=False)
    for _ in range(20):
        obs, _, terminated, truncated, info = envs.step(agent.act(obs, False, np.random.default_rng(0), info))
        agent.episode_start(terminated | truncated, explore=False)
    accuracy = agent.evaluation_measures()
    assert accuracy["inference_accuracy_q4"] >= 0.75
    assert accuracy["inference_accuracy_q4"] > accuracy["inference_accuracy_q1"]
