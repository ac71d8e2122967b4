"""Sum-tree throughput: anew's SumTree vs a per-element Python loop tree and a numpy binary tree.

Both trees hold the same priorities over a Dopamine-sized buffer (1M slots) and serve the
prioritized-replay pattern of one training step: a stratified sample of a batch, then a priority
update of the sampled slots. Prints batches per CPU second for each and the ratio (CPU time, not
wall time, so other processes on a shared machine do not skew the comparison).

    python benchmarks/bench_sum_tree.py [--capacity 1000000] [--batch-size 32] [--seconds 2]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from anew.agents.sum_tree import SumTree


class LoopSumTree:
    """The straightforward implementation: one Python walk per query and per update."""

    def __init__(self, capacity: int):
        self.leaves = 1 << max(0, (capacity - 1).bit_length())
        self.nodes = [0.0] * (2 * self.leaves)

    def set(self, index: int, priority: float) -> None:
        node = index + self.leaves
        delta = priority - self.nodes[node]
        while node >= 1:
            self.nodes[node] += delta
            node //= 2

    def find(self, mass: float) -> int:
        node = 1
        while node < self.leaves:
            left = 2 * node
            if mass < self.nodes[left] or self.nodes[left + 1] <= 0.0:
                node = left
            else:
                mass -= self.nodes[left]
                node = left + 1
        return node - self.leaves

    def sample(self, batch_size: int, rng: np.random.Generator) -> list[int]:
        stratum = self.nodes[1] / batch_size
        return [self.find((k + rng.random()) * stratum) for k in range(batch_size)]


class BinaryNumpyTree:
    """A binary heap vectorised over the batch, one level per step (20 levels for 1M slots)."""

    def __init__(self, capacity: int):
        self.leaves = 1 << max(0, (capacity - 1).bit_length())
        self.nodes = np.zeros(2 * self.leaves)

    def update(self, indices: np.ndarray, priorities: np.ndarray) -> None:
        nodes, first = np.unique(indices[::-1], return_index=True)
        nodes = nodes + self.leaves
        self.nodes[nodes] = priorities[::-1][first]
        while nodes[0] > 1:
            nodes = np.unique(nodes // 2)
            self.nodes[nodes] = self.nodes[2 * nodes] + self.nodes[2 * nodes + 1]

    def sample(self, batch_size: int, rng: np.random.Generator) -> np.ndarray:
        masses = (np.arange(batch_size) + rng.random(batch_size)) * (self.nodes[1] / batch_size)
        nodes = np.ones(batch_size, dtype=np.int64)
        while nodes[0] < self.leaves:
            left_mass = self.nodes[2 * nodes]
            go_right = (masses >= left_mass) & (self.nodes[2 * nodes + 1] > 0.0)
            masses -= np.where(go_right, left_mass, 0.0)
            nodes = 2 * nodes + go_right
        return nodes - self.leaves


def batches_per_second(step, seconds: float) -> float:
    count, start = 0, time.process_time()
    while time.process_time() - start < seconds:
        step()
        count += 1
    return count / (time.process_time() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--capacity", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    priorities = rng.random(args.capacity)
    ours, binary, loop = SumTree(args.capacity), BinaryNumpyTree(args.capacity), LoopSumTree(args.capacity)
    ours.update(np.arange(args.capacity), priorities)
    binary.update(np.arange(args.capacity), priorities)
    for index, priority in enumerate(priorities):
        loop.set(index, float(priority))
    assert abs(ours.total - loop.nodes[1]) < 1e-6 * ours.total
    assert abs(ours.total - binary.nodes[1]) < 1e-6 * ours.total

    def step_ours() -> None:
        indices = ours.sample(args.batch_size, rng)
        ours.update(indices, rng.random(args.batch_size))

    def step_binary() -> None:
        indices = binary.sample(args.batch_size, rng)
        binary.update(indices, rng.random(args.batch_size))

    def step_loop() -> None:
        indices = loop.sample(args.batch_size, rng)
        for index, priority in zip(indices, rng.random(args.batch_size)):
            loop.set(index, float(priority))

    results = {}
    contestants = (
        ("anew SumTree (32-ary, numpy)", step_ours),
        ("binary tree (numpy, batched)", step_binary),
        ("binary tree (Python loop)", step_loop),
    )
    for name, step in contestants:
        results[name] = batches_per_second(step, args.seconds)
        print(f"{name:30s} {results[name]:8.0f} sample+update batches per CPU second")
    ours_rate, binary_rate, loop_rate = results.values()
    print(
        f"capacity {args.capacity:,}, batch {args.batch_size}: "
        f"anew / Python loop = {ours_rate / loop_rate:.2f}x, "
        f"anew / numpy binary = {ours_rate / binary_rate:.2f}x"
    )


if __name__ == "__main__":
    main()
