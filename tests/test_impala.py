"""Impala ResNet torso: shapes, SAME padding of the pool, residual structure, parameter count."""

from __future__ import annotations

import pytest
import torch

from anew.agents.heads import QHead, RainbowNetwork
from anew.agents.impala import ImpalaCNN, ImpalaStack, ResidualBlock, same_padding

torch.set_num_threads(1)


@pytest.mark.parametrize(
    "size, expected", [(84, (0, 1)), (42, (0, 1)), (21, (1, 1)), (11, (1, 1)), (10, (0, 1)), (5, (1, 1))]
)
def test_same_padding_for_a_3x3_stride_2_pool(size, expected):
    # TF 'SAME': out = ceil(size / 2); total = (out - 1) * 2 + 3 - size, the odd pixel goes after.
    assert same_padding(size, 3, 2) == expected


def _same_max_pool_by_loops(x: torch.Tensor) -> torch.Tensor:
    """3x3 stride-2 max pool with TF 'SAME' semantics, written directly from the definition."""
    height, width = x.shape[-2:]
    top, left = same_padding(height, 3, 2)[0], same_padding(width, 3, 2)[0]
    out = torch.empty(*x.shape[:-2], -(-height // 2), -(-width // 2))
    for i in range(out.shape[-2]):
        for j in range(out.shape[-1]):
            rows = slice(max(2 * i - top, 0), min(2 * i - top + 3, height))
            cols = slice(max(2 * j - left, 0), min(2 * j - left + 3, width))
            out[..., i, j] = x[..., rows, cols].amax(dim=(-2, -1))
    return out


@pytest.mark.parametrize("size", [6, 7, 10])
def test_stack_pools_like_tf_same(size):
    torch.manual_seed(0)
    stack = ImpalaStack(2, 3, num_blocks=0)
    x = torch.randn(2, 2, size, size)
    torch.testing.assert_close(stack(x), _same_max_pool_by_loops(stack.conv(x)))


def test_residual_block_is_identity_when_its_convs_are_zero():
    block = ResidualBlock(4)
    for conv in (block.conv0, block.conv1):
        torch.nn.init.zeros_(conv.weight)
    x = torch.randn(2, 4, 5, 5)
    torch.testing.assert_close(block(x), x)
    torch.nn.init.ones_(block.conv1.bias)  # the skip adds to the branch: x + 1
    torch.testing.assert_close(block(x), x + 1)


def test_atari_shapes_and_parameter_count_match_reincarnating_rl():
    torso = ImpalaCNN(in_channels=4)
    assert torso.conv_features == 32 * 11 * 11  # 84 -> 42 -> 21 -> 11
    assert torso.out_features == 512
    obs = torch.randint(0, 256, (3, 4, 84, 84), dtype=torch.uint8)
    features = torso(obs)
    assert features.shape == (3, 512) and (features >= 0).all()

    def conv(cin: int, cout: int) -> int:
        return cin * cout * 9 + cout

    expected = 0
    for cin, cout in ((4, 16), (16, 32), (32, 32)):
        expected += conv(cin, cout) + 4 * conv(cout, cout)  # stack conv + 2 blocks x 2 convs
    expected += 3872 * 512 + 512
    assert sum(p.numel() for p in torso.parameters()) == expected


def test_inputs_are_scaled_by_input_scale():
    torch.manual_seed(1)
    atari = ImpalaCNN(in_channels=2, height=10, width=10, features=8)
    grid = ImpalaCNN(in_channels=2, height=10, width=10, features=8, input_scale=1.0)
    grid.load_state_dict(atari.state_dict())
    bits = torch.randint(0, 2, (4, 2, 10, 10), dtype=torch.uint8)
    torch.testing.assert_close(atari(bits * 255), grid(bits))


def test_minatar_sized_torso_with_a_rainbow_head_trains():
    torch.manual_seed(2)
    torso = ImpalaCNN(in_channels=4, height=10, width=10, features=256, input_scale=1.0)
    assert torso.conv_features == 32 * 2 * 2  # 10 -> 5 -> 3 -> 2
    network = RainbowNetwork(torso, QHead(torso.out_features, 3, dueling=True))
    obs = torch.randint(0, 2, (5, 4, 10, 10), dtype=torch.uint8)
    q = network(obs)
    assert q.shape == (5, 3)
    q.sum().backward()
    assert all(p.grad is not None for p in network.parameters())
