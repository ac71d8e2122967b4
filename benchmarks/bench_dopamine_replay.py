"""Legacy Dopamine replay reading: anew's DopamineReplay vs a straightforward port of Dopamine's reader loop.

Dopamine itself (TensorFlow) is not installed here, so the peer is a literal port of
``OutOfGraphReplayBuffer.load`` (``np.load`` on a ``GzipFile`` per file), ``is_valid_transition`` (one Python
call per slot) and ``sample_transition_batch`` (one Python iteration per index). Both read the same synthetic
checkpoint (Atari-sized 84x84 frames, episodes with terminals and time-outs) in one process; the script checks
their outputs are identical, then prints the times and ratios.

    python benchmarks/bench_dopamine_replay.py [--capacity 20000] [--batches 200] [--batch-size 32] [--rounds 3]
"""

from __future__ import annotations

import argparse
import gzip
import math
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from anew.reincarnation.formats import DopamineReplay, DopamineReplayWriter
from anew.reincarnation.formats.safe_pickle import safe_loads


class DopamineLoopReader:
    """Dopamine's reader as Dopamine writes it: per-file np.load, per-index Python loops."""

    def __init__(self, directory: Path, suffix: int, stack_size: int, update_horizon: int, gamma: float):
        self.store = {}
        for name in ("observation", "action", "reward", "terminal"):
            with gzip.GzipFile(directory / f"$store$_{name}_ckpt.{suffix}.gz") as infile:
                self.store[name] = np.load(infile, allow_pickle=False)
        with gzip.GzipFile(directory / f"add_count_ckpt.{suffix}.gz") as infile:
            self.add_count = np.load(infile, allow_pickle=False)
        with gzip.GzipFile(directory / f"invalid_range_ckpt.{suffix}.gz") as infile:
            self.invalid_range = np.load(infile, allow_pickle=False)
        with gzip.GzipFile(directory / f"episode_end_indices_ckpt.{suffix}.gz") as infile:
            self.episode_end_indices = safe_loads(infile.read())
        self.capacity = len(self.store["observation"])
        self.k, self.n = stack_size, update_horizon
        self.discounts = np.array([math.pow(gamma, j) for j in range(update_horizon)], dtype=np.float32)

    def get_range(self, array, start, end):
        if start % self.capacity < end % self.capacity:
            return array[start:end, ...]
        return array[[(start + i) % self.capacity for i in range(end - start)], ...]

    def stack(self, index):
        return np.moveaxis(self.get_range(self.store["observation"], index - self.k + 1, index + 1), 0, -1)

    def is_valid_transition(self, index):
        cursor = self.add_count % self.capacity
        if self.add_count < self.capacity and (index >= cursor - self.n or index < self.k - 1):
            return False
        if index in set(self.invalid_range):
            return False
        if self.get_range(self.store["terminal"], index - self.k + 1, index + 1)[:-1].any():
            return False
        for j in range(self.n):
            i = (index + j) % self.capacity
            if i in self.episode_end_indices and not self.store["terminal"][i]:
                return False
        return True

    def sample_transition_batch(self, indices):
        size = len(indices)
        batch = {
            "state": np.empty((size, 84, 84, self.k), np.uint8),
            "action": np.empty(size, np.int32),
            "reward": np.empty(size, np.float32),
            "next_state": np.empty((size, 84, 84, self.k), np.uint8),
            "next_action": np.empty(size, np.int32),
            "next_reward": np.empty(size, np.float32),
            "terminal": np.empty(size, np.uint8),
            "indices": np.empty(size, np.int32),
        }
        for b, index in enumerate(indices):
            window = [(index + j) % self.capacity for j in range(self.n)]
            terminals = self.store["terminal"][window]
            length = int(np.argmax(terminals.astype(bool))) + 1 if terminals.any() else self.n
            nxt = index + length
            rewards = self.get_range(self.store["reward"], index, nxt)
            batch["state"][b] = self.stack(index)
            batch["reward"][b] = np.sum(self.discounts[:length] * rewards, axis=0)
            batch["next_state"][b] = self.stack(nxt % self.capacity)
            batch["next_action"][b] = self.store["action"][nxt % self.capacity]
            batch["next_reward"][b] = self.store["reward"][nxt % self.capacity]
            batch["terminal"][b] = terminals.any()
            batch["indices"][b] = index
            batch["action"][b] = self.store["action"][index]
        return batch


def make_checkpoint(directory: Path, capacity: int, update_horizon: int, seed: int = 0) -> None:
    """Atari-like frames (flat background, a few moving blocks) so gzip behaves like on real data."""
    rng = np.random.default_rng(seed)
    writer = DopamineReplayWriter(capacity, (84, 84), stack_size=4, update_horizon=update_horizon)
    frame = np.full((84, 84), 87, np.uint8)
    while writer.add_count < capacity + capacity // 3:  # wrap once, like a long-running buffer
        steps = int(rng.integers(50, 900))
        terminated = bool(rng.random() < 0.7)
        for t in range(steps):
            frame = frame.copy()
            y, x = rng.integers(0, 78, size=2)
            frame[y : y + 6, x : x + 3] = rng.integers(0, 255)
            last = t == steps - 1
            writer.add(
                frame,
                int(rng.integers(6)),
                float(rng.choice([-1.0, 0.0, 0.0, 1.0])),
                terminal=last and terminated,
                episode_end=last,
            )
    writer.save(directory, 1)


def timed(function, repeats: int = 1):
    start = time.perf_counter()
    for _ in range(repeats):
        result = function()
    return result, (time.perf_counter() - start) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--capacity", type=int, default=20000)
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--update-horizon", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench_dopamine_replay_") as folder:
        directory = Path(folder)
        _, seconds = timed(lambda: make_checkpoint(directory, args.capacity, args.update_horizon))
        size = sum(os.path.getsize(p) for p in directory.iterdir())
        print(
            f"checkpoint: {args.capacity} slots, {args.capacity * 84 * 84 / 2**20:.0f} MiB of frames, "
            f"{size / 2**20:.1f} MiB gzipped (written in {seconds:.1f} s)"
        )

        loaders = {
            "peer": lambda: DopamineLoopReader(directory, 1, 4, args.update_horizon, 0.99),
            "ours": lambda: DopamineReplay(directory, 1),
            "mapped": lambda: DopamineReplay(directory, 1, mmap_threshold_bytes=0),
        }
        loaded, load_seconds = {}, dict.fromkeys(loaders, float("inf"))
        for _ in range(args.rounds):
            for name, load in loaders.items():
                loaded[name], seconds = timed(load)
                load_seconds[name] = min(load_seconds[name], seconds)
        peer, ours, mapped = loaded["peer"], loaded["ours"], loaded["mapped"]
        peer_load, ours_load, mapped_load = load_seconds["peer"], load_seconds["ours"], load_seconds["mapped"]
        print(
            f"load           dopamine loop {peer_load:7.3f} s | anew {ours_load:7.3f} s "
            f"(x{peer_load / ours_load:.2f}) | anew memory-mapped {mapped_load:7.3f} s"
        )

        peer_valid, peer_seconds = timed(
            lambda: [i for i in range(peer.capacity) if peer.is_valid_transition(i)]
        )
        ours_valid, ours_seconds = timed(DopamineReplay(directory, 1).valid_indices)  # a fresh, uncached one
        assert list(ours_valid) == peer_valid, "valid indices differ"
        print(
            f"valid indices  dopamine loop {peer_seconds:7.3f} s | anew {ours_seconds:7.3f} s "
            f"(x{peer_seconds / ours_seconds:.0f} faster), {len(peer_valid)} valid"
        )

        rng = np.random.default_rng(1)
        batches = [rng.choice(ours_valid, args.batch_size).astype(np.int32) for _ in range(args.batches)]
        for indices in batches[:5]:
            a, b, c = (
                peer.sample_transition_batch(indices),
                ours.sample_transition_batch(len(indices), indices),
                mapped.sample_transition_batch(len(indices), indices),
            )
            assert all(np.array_equal(a[k], b[k]) and np.array_equal(a[k], c[k]) for k in a), "samples differ"
        # Interleaved rounds, best of each: the machine is shared, so single timings are noisy.
        contenders = {
            "peer": lambda: [peer.sample_transition_batch(i) for i in batches],
            "ours": lambda: [ours.sample_transition_batch(len(i), i) for i in batches],
            "mapped": lambda: [mapped.sample_transition_batch(len(i), i) for i in batches],
        }
        best = dict.fromkeys(contenders, float("inf"))
        for _ in range(args.rounds):
            for name, run in contenders.items():
                best[name] = min(best[name], timed(run)[1])
        peer_sample, ours_sample, mapped_sample = best["peer"], best["ours"], best["mapped"]
        per_batch = 1e3 / args.batches
        print(
            f"sample {args.batch_size:>3}     dopamine loop {peer_sample * per_batch:7.3f} ms/batch | anew "
            f"{ours_sample * per_batch:7.3f} ms/batch (x{peer_sample / ours_sample:.1f} faster) | "
            f"anew memory-mapped {mapped_sample * per_batch:7.3f} ms/batch"
        )


if __name__ == "__main__":
    main()
