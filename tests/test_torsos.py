"""Torsos: output sizes, and the MinAtar torso's patch-gather convolution against PyTorch's Conv2d."""

from __future__ import annotations

import pytest
import torch

from anew.agents.networks import MinAtarCNN, NatureCNN, make_torso


def test_conv_only_torsos() -> None:
    assert NatureCNN(4, features=None)(torch.zeros(1, 4, 84, 84, dtype=torch.uint8)).shape == (1, 7744)
    assert MinAtarCNN(4, features=None)(torch.zeros(1, 4, 10, 10)).shape == (1, 1024)
    impala = make_torso("impala", (4, 10, 10), final_dense=False)
    assert impala(torch.zeros(2, 4, 10, 10)).shape == (2, impala.out_features) == (2, 128)
    assert make_torso("mlp", (4,), (64, 32), final_dense=False).out_features == 64


@pytest.mark.parametrize("shape", [(4, 10, 10), (7, 10, 8)])
def test_minatar_torso_matches_pytorch_conv_values_and_gradients(shape: tuple[int, int, int]) -> None:
    """The patch-gather convolution is nn.Conv2d's arithmetic (to rounding), forward and backward."""
    torch.manual_seed(0)
    torso = MinAtarCNN(*shape)
    plain = torch.nn.Sequential(torso.conv, torch.nn.ReLU(), torch.nn.Flatten(), torso.dense, torch.nn.ReLU())
    grid = torch.randint(0, 2, (6, *shape), dtype=torch.uint8)
    ours = torso(grid)
    (ours * torch.arange(ours.shape[1])).sum().backward()
    ours_grads = [p.grad.clone() for p in torso.parameters()]
    torso.zero_grad()
    reference = plain(grid.float())
    (reference * torch.arange(reference.shape[1])).sum().backward()
    torch.testing.assert_close(ours, reference)
    for mine, theirs in zip(ours_grads, [p.grad for p in torso.parameters()], strict=True):
        torch.testing.assert_close(mine, theirs, rtol=1e-5, atol=1e-4)  # sums in another order
    assert list(torso.state_dict()) == ["conv.weight", "conv.bias", "dense.weight", "dense.bias"]
    assert torso(grid[:0]).shape == (0, 128)
