"""NoisyLinear: deterministic mean weights in eval mode, fresh factorised noise in train mode."""

from __future__ import annotations

import math

import torch

from anew.agents.noisy import NoisyLinear, reset_noise

torch.set_num_threads(1)


def make_layer(seed: int = 0, **kwargs) -> NoisyLinear:
    torch.manual_seed(seed)
    return NoisyLinear(8, 3, **kwargs)


def test_eval_mode_uses_mean_weights_and_ignores_noise():
    layer = make_layer().eval()
    x = torch.randn(5, 8)
    first = layer(x)
    layer.reset_noise()
    torch.testing.assert_close(layer(x), first, rtol=0, atol=0)
    torch.testing.assert_close(first, x @ layer.weight_mu.T + layer.bias_mu)


def test_train_mode_output_changes_only_after_reset_noise():
    layer = make_layer().train()
    x = torch.randn(5, 8)
    first = layer(x)
    torch.testing.assert_close(layer(x), first, rtol=0, atol=0)  # same noise until it is reset
    layer.reset_noise()
    assert not torch.allclose(layer(x), first)
    assert not torch.allclose(layer(x), layer.eval()(x))  # noise actually perturbs the output


def test_noise_is_factorised_and_follows_the_paper():
    layer = make_layer().train()
    generator = torch.Generator().manual_seed(7)
    layer.reset_noise(generator)
    # Redraw the same normals independently: eps_in first, then eps_out, f(e) = sign(e) sqrt|e|.
    again = torch.Generator().manual_seed(7)
    raw_in, raw_out = torch.randn(8, generator=again), torch.randn(3, generator=again)
    f_in, f_out = raw_in.sign() * raw_in.abs().sqrt(), raw_out.sign() * raw_out.abs().sqrt()
    x = torch.randn(2, 8)
    weight = layer.weight_mu + layer.weight_sigma * torch.outer(f_out, f_in)
    bias = layer.bias_mu + layer.bias_sigma * f_out
    torch.testing.assert_close(layer(x), x @ weight.T + bias)


def test_initialisation_bounds_and_sigma0():
    layer = make_layer(sigma0=0.5)
    bound = 1 / math.sqrt(8)
    assert layer.weight_mu.abs().max() <= bound and layer.bias_mu.abs().max() <= bound
    torch.testing.assert_close(layer.weight_sigma, torch.full((3, 8), 0.5 * bound))
    torch.testing.assert_close(make_layer(sigma0=0.1).bias_sigma, torch.full((3,), 0.1 * bound))


def test_generator_makes_noise_reproducible_and_noise_is_in_state_dict():
    a, b = make_layer(seed=0), make_layer(seed=0)
    a.reset_noise(torch.Generator().manual_seed(3))
    b.reset_noise(torch.Generator().manual_seed(3))
    x = torch.randn(4, 8)
    torch.testing.assert_close(a(x), b(x))
    c = make_layer(seed=1)
    c.load_state_dict(a.state_dict())  # noise buffers travel with the weights (exact resume)
    torch.testing.assert_close(c(x), a(x))


def test_gradients_reach_mu_and_sigma():
    layer = make_layer().train()
    layer(torch.randn(4, 8)).sum().backward()
    for parameter in (layer.weight_mu, layer.weight_sigma, layer.bias_mu, layer.bias_sigma):
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0


def test_reset_noise_helper_reaches_nested_layers():
    model = torch.nn.Sequential(NoisyLinear(4, 4), torch.nn.ReLU(), torch.nn.Sequential(NoisyLinear(4, 2)))
    before = [m.noise_out.clone() for m in model.modules() if isinstance(m, NoisyLinear)]
    reset_noise(model)
    after = [m.noise_out for m in model.modules() if isinstance(m, NoisyLinear)]
    assert all(not torch.equal(x, y) for x, y in zip(before, after))


def test_no_grad_path_equals_the_built_noisy_weight_and_gradients_are_the_papers():
    layer = make_layer().train()
    layer.reset_noise(torch.Generator().manual_seed(5))
    x = torch.randn(6, 8)
    weight = layer.weight_mu + layer.weight_sigma * torch.outer(layer.noise_out, layer.noise_in)
    bias = layer.bias_mu + layer.bias_sigma * layer.noise_out
    with torch.no_grad():  # acting and targets: the factorised product, no weight matrix built
        torch.testing.assert_close(layer(x), x @ weight.T + bias)
    out = layer(x)
    torch.testing.assert_close(out, x @ weight.T + bias)
    grad_out = torch.randn_like(out)
    out.backward(grad_out)
    expected = grad_out.T @ x  # dL/dW of y = W x + b
    torch.testing.assert_close(layer.weight_mu.grad, expected)
    torch.testing.assert_close(
        layer.weight_sigma.grad, expected * torch.outer(layer.noise_out, layer.noise_in)
    )
    torch.testing.assert_close(layer.bias_sigma.grad, grad_out.sum(0) * layer.noise_out)
