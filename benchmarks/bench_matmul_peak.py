"""How close one DQN update gets to this machine's matmul peak, for anew and SB3, both Nature torsos.

    python benchmarks/bench_matmul_peak.py --threads 2 --repeats 30

1. Peak: ``torch.mm`` of two float32 ``--size`` matrices (2 n^3 FLOP), median and best of ``--repeats``.
2. FLOPs of one batch-32 DQN update, counted from the layers themselves (forward hooks on Conv2d/Linear,
   2 FLOP per multiply-add): online forward + online backward (2x forward per layer: input and weight
   gradients, except the first layer, whose input needs no gradient: 1x) + target forward.
3. Update time, median of ``--repeats`` after 3 untimed: anew ``learn_on(sample)`` on a pre-drawn batch
   (network, loss, Adam), anew ``learn_on(sample_batch())`` (plus drawing the batch), SB3 ``train(1, 32)``
   (its whole gradient step: draw the batch, network, Huber loss, grad-norm clip, Adam).
Fraction of peak = update FLOPs / update time / median peak, measured back to back under the same load.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time
from collections.abc import Callable

import torch
from bench_dqn_speed import AnewLoop, SB3Loop, load, work_for
from torch import nn


def matmul_gflops(size: int, repeats: int) -> list[float]:
    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b)
        rates.append(2 * size**3 / (time.perf_counter() - start) / 1e9)
    return rates


def forward_flops(net: nn.Module, obs: torch.Tensor) -> list[int]:
    """FLOPs of each Conv2d/Linear layer in one forward of ``obs``, in call order."""
    flops: list[int] = []

    def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        if isinstance(module, nn.Conv2d):
            k = module.in_channels // module.groups * module.kernel_size[0] * module.kernel_size[1]
            flops.append(2 * k * output.numel())
        else:
            flops.append(2 * module.in_features * output.numel())

    handles = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        net(obs)
    for handle in handles:
        handle.remove()
    return flops


def update_flops(net: nn.Module, obs: torch.Tensor) -> int:
    """Online forward + backward (first layer 1x, others 2x forward) + target forward."""
    layers = forward_flops(net, obs)
    return sum(layers) + (layers[0] + 2 * sum(layers[1:])) + sum(layers)


def median_ms(step: Callable[[], object], repeats: int) -> float:
    for _ in range(3):
        step()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def measure(torso: str, args: argparse.Namespace) -> None:
    """Update FLOPs, update times and their fraction of the matmul peak measured around them."""
    work = dataclasses.replace(work_for("ALE/Breakout-v5", torso), warmup=args.warmup)
    anew, sb3 = AnewLoop(work), SB3Loop(work, same_padding=torso == "nature")
    batch = anew.agent.sample_batch()
    flops = update_flops(anew.agent.online, anew.agent.to_tensor(batch.obs))
    sb3_flops = update_flops(sb3.model.q_net, torch.as_tensor(batch.obs).float())
    peak = statistics.median(matmul_gflops(args.size, args.repeats))
    times = {
        "anew learn_on (pre-drawn batch)": median_ms(lambda: anew.agent.learn_on(batch), args.repeats),
        "anew learn_on(sample_batch())": median_ms(
            lambda: anew.agent.learn_on(anew.agent.sample_batch()), args.repeats
        ),
        "SB3 train(1, 32)": median_ms(lambda: sb3.model.train(gradient_steps=1, batch_size=32), args.repeats),
    }
    peak = (peak + statistics.median(matmul_gflops(args.size, args.repeats))) / 2
    print(
        f"{torso}: update {flops / 1e9:.2f} GFLOP (SB3 net {sb3_flops / 1e9:.2f}); "
        f"peak around it {peak:.1f} GFLOP/s; floor at peak {flops / peak / 1e6:.1f} ms ({load()})"
    )
    for name, ms in times.items():
        print(
            f"  {name:34s} {ms:7.1f} ms  {flops / ms / 1e6:6.1f} GFLOP/s  "
            f"{flops / ms / 1e6 / peak:5.1%} of peak"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=300, help="env steps to fill each buffer")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    peaks = matmul_gflops(args.size, args.repeats)
    print(
        f"torch.mm {args.size}^2 at {args.threads} thread(s): median {statistics.median(peaks):.1f}, "
        f"best {max(peaks):.1f} GFLOP/s ({load()})"
    )
    for torso in ("nature-valid", "nature"):
        measure(torso, args)


if __name__ == "__main__":
    main()
