"""The Nature paper's VALID-padding torso (``--torso nature-valid``), beside Dopamine's SAME one."""

from __future__ import annotations

import dataclasses

import gymnasium as gym
import numpy as np
import pytest
import torch

from anew.agents.core import AgentSpec
from anew.agents.dqn import PRESETS, DQNAgent
from anew.agents.networks import make_torso
from anew.agents.rainbow import PRESETS as RAINBOW_PRESETS
from anew.agents.rainbow import RainbowAgent


def test_valid_padding_is_the_plain_conv_stack_with_3136_features() -> None:
    torso = make_torso("nature-valid", (4, 84, 84))
    assert (
        torso.dense.in_features == 64 * 7 * 7 and make_torso("nature", (4, 84, 84)).dense.in_features == 7744
    )
    plain = torch.nn.Sequential(
        torso.conv0,
        torch.nn.ReLU(),
        torso.conv1,
        torch.nn.ReLU(),
        torso.conv2,
        torch.nn.ReLU(),
        torch.nn.Flatten(),
        torso.dense,
        torch.nn.ReLU(),
    )
    frames = torch.randint(0, 256, (3, 4, 84, 84), dtype=torch.uint8)
    torch.testing.assert_close(torso(frames), plain(frames.float() / 255.0))


@pytest.mark.parametrize("agent_class", [DQNAgent, RainbowAgent])
def test_agents_take_the_valid_torso(agent_class) -> None:
    preset = (RAINBOW_PRESETS if agent_class is RainbowAgent else PRESETS)["dopamine"]
    config = dataclasses.replace(preset, torso="nature-valid", buffer_size=100)
    agent = agent_class(
        config, AgentSpec(gym.spaces.Box(0, 255, (4, 84, 84), np.uint8), gym.spaces.Discrete(4))
    )
    obs = np.zeros((2, 4, 84, 84), np.uint8)
    assert agent.act(obs, explore=False).shape == (2,)
    sizes = [p.shape for p in agent.online.parameters()]
    assert any(3136 in shape for shape in sizes) and not any(7744 in shape for shape in sizes)
