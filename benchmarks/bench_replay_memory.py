"""Replay memory per Atari transition: anew's buffer vs Stable-Baselines3's ReplayBuffer.

    python benchmarks/bench_replay_memory.py [--fill 100000]

Prints bytes per transition from the arrays each buffer allocates for a 1M-transition Dopamine
(4x84x84 uint8) buffer, and the resident memory actually used after filling ``--fill`` rows.
"""

from __future__ import annotations

import argparse
import gc
import resource

import gymnasium as gym
import numpy as np

from anew.agents.replay import ReplayBuffer

OBS_SHAPE = (4, 84, 84)
CAPACITY = 1_000_000


def rss_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * resource.getpagesize()


def anew_buffer(capacity: int) -> ReplayBuffer:
    return ReplayBuffer(capacity, 1, OBS_SHAPE, obs_dtype=np.uint8, frame_stack=4, n_step=1)


def sb3_buffer(capacity: int):
    from stable_baselines3.common.buffers import ReplayBuffer as SB3ReplayBuffer

    space = gym.spaces.Box(0, 255, OBS_SHAPE, np.uint8)
    return SB3ReplayBuffer(
        capacity,
        space,
        gym.spaces.Discrete(4),
        device="cpu",
        optimize_memory_usage=True,
        handle_timeout_termination=False,
    )


def allocated(buffer, names: tuple[str, ...]) -> int:
    return sum(getattr(buffer, name).nbytes for name in names if getattr(buffer, name, None) is not None)


def fill_rss(make, capacity: int, add) -> float:
    gc.collect()
    before = rss_bytes()
    buffer = make(capacity)
    frames = np.random.default_rng(0).integers(0, 255, (capacity % 997 + 64,) + OBS_SHAPE, dtype=np.uint8)
    for i in range(capacity):
        add(buffer, frames[i % len(frames)][None], frames[(i + 1) % len(frames)][None])
    used = rss_bytes() - before
    del buffer
    gc.collect()
    return used / capacity


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--fill", type=int, default=100_000, help="rows to actually write for the RSS measurement"
    )
    args = parser.parse_args()
    ours = anew_buffer(CAPACITY)
    ours_bytes = allocated(ours, ("obs", "action", "reward", "flags")) / CAPACITY
    del ours
    import warnings

    # SB3 cannot allocate 1M stacked Atari observations on a 24 GiB machine (26.3 GiB): size it at
    # 100k and scale; its layout is linear in capacity.
    small = CAPACITY // 10
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = sb3_buffer(small)
    theirs_bytes = (
        allocated(theirs, ("observations", "next_observations", "actions", "rewards", "dones", "timeouts"))
        / small
    )
    del theirs
    print(
        f"allocated bytes/transition (1M Dopamine buffer): anew {ours_bytes:,.0f}  SB3(optimize_memory_usage) "
        f"{theirs_bytes:,.0f}  ratio {theirs_bytes / ours_bytes:.2f}x"
    )
    print(f"anew 1M-transition buffer: {ours_bytes * CAPACITY / 1e9:.3f} GB (bar: <= 7.2 GB)")

    zero, false = np.zeros(1, np.int32), np.zeros(1, bool)
    ours_rss = fill_rss(anew_buffer, args.fill, lambda b, o, n: b.add(o, zero, np.zeros(1), false, false, n))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs_rss = fill_rss(
            sb3_buffer, args.fill, lambda b, o, n: b.add(o, n, zero[:, None], np.zeros(1), false, [{}])
        )
    print(
        f"resident bytes/transition after {args.fill:,} adds: anew {ours_rss:,.0f}  SB3 {theirs_rss:,.0f}  "
        f"ratio {theirs_rss / ours_rss:.2f}x"
    )


if __name__ == "__main__":
    main()
