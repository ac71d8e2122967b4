"""Atari through ale-py with named evaluation protocols (Machado et al. 2018 / Dopamine, Atari 100k).

The protocol in force is printed in every run's log and stored in its config, because results on
Atari are only comparable under the same protocol.
"""

from __future__ import annotations

import difflib
from dataclasses import asdict, dataclass

import gymnasium as gym
import numpy as np

from anew.errors import AnewError


@dataclass(frozen=True)
class AtariProtocol:
    """How an ALE game is played: the settings that make scores comparable across papers."""

    name: str
    sticky_action_prob: float
    terminal_on_life_loss: bool  # in training only; evaluation always plays whole games
    frame_skip: int = 4
    max_episode_frames: int = 108_000  # 27,000 agent steps (30 minutes of play)
    noop_max: int = 0
    full_action_space: bool = False
    screen_size: int = 84
    frame_stack: int = 4

    def describe(self) -> str:
        return ", ".join(f"{key}={value}" for key, value in asdict(self).items())


PROTOCOLS = {
    # Machado et al. (2018) as Dopamine plays it: sticky actions, no life-loss terminals.
    "dopamine": AtariProtocol("dopamine", sticky_action_prob=0.25, terminal_on_life_loss=False),
    # The Atari 100k line (SimPLe, DER, DrQ, SPR): no sticky actions, life loss ends training episodes.
    "atari100k": AtariProtocol("atari100k", sticky_action_prob=0.0, terminal_on_life_loss=True),
}


def protocol(name: str) -> AtariProtocol:
    if name not in PROTOCOLS:
        raise AnewError(f"unknown Atari protocol {name!r}: choose one of {', '.join(PROTOCOLS)}")
    return PROTOCOLS[name]


def is_atari(env_id: str) -> bool:
    return env_id.startswith("ALE/")


def _ensure_ale() -> None:
    try:
        import ale_py
    except ImportError as error:
        raise AnewError("Atari needs ale-py: pip install 'anew[atari]'") from error
    gym.register_envs(ale_py)


def check_atari_id(env_id: str) -> None:
    """ale-py present and ``env_id`` one of its ids; else one line naming the closest ids."""
    _ensure_ale()
    if env_id not in gym.registry:
        close = difflib.get_close_matches(env_id, [i for i in gym.registry if is_atari(i)], n=3)
        hint = (
            f"did you mean {' or '.join(close)}?" if close else "run `anew envs --filter ALE/` to list them"
        )
        raise AnewError(f"unknown Atari id {env_id!r}; {hint}")


def make_atari_env(
    env_id: str, proto: AtariProtocol, training: bool, render_mode: str | None = None
) -> gym.Env:
    """One ALE env with Dopamine's preprocessing: skip 4 with max-pool, 84x84 gray, stack 4 (zero padded)."""
    _ensure_ale()
    env = gym.make(
        env_id,
        frameskip=1,
        repeat_action_probability=proto.sticky_action_prob,
        full_action_space=proto.full_action_space,
        max_num_frames_per_episode=proto.max_episode_frames,
        render_mode=render_mode,
        max_episode_steps=None,
    )
    env = gym.wrappers.AtariPreprocessing(
        env,
        noop_max=proto.noop_max,
        frame_skip=proto.frame_skip,
        screen_size=proto.screen_size,
        terminal_on_life_loss=proto.terminal_on_life_loss and training,
        grayscale_obs=True,
        scale_obs=False,
    )
    return gym.wrappers.FrameStackObservation(env, proto.frame_stack, padding_type="zero")


def make_atari_vector_env(
    env_id: str, num_envs: int, proto: AtariProtocol, training: bool
) -> gym.vector.VectorEnv:
    """ale-py's C++ vector env with the same protocol (the fast path; rewards left unclipped)."""
    _ensure_ale()
    from ale_py.vector_env import AtariVectorEnv

    game = env_id.split("/")[1].rsplit("-v", 1)[0]
    snake = "".join(f"_{c.lower()}" if c.isupper() else c for c in game).lstrip("_")
    return AtariVectorEnv(
        snake,
        num_envs,
        autoreset_mode=gym.vector.AutoresetMode.SAME_STEP,
        repeat_action_probability=proto.sticky_action_prob,
        full_action_space=proto.full_action_space,
        max_num_frames_per_episode=proto.max_episode_frames,
        frameskip=proto.frame_skip,
        stack_num=proto.frame_stack,
        img_height=proto.screen_size,
        img_width=proto.screen_size,
        noop_max=proto.noop_max,
        episodic_life=proto.terminal_on_life_loss and training,
        reward_clipping=False,  # the agent clips for learning; logged returns stay unclipped
        use_fire_reset=False,
        num_threads=min(num_envs, 2),
    )


def render_frame(obs: np.ndarray) -> np.ndarray:
    """An RGB frame of the newest stacked grayscale observation (for quick previews)."""
    frame = np.asarray(obs)[-1]
    return np.repeat(frame[..., None], 3, axis=2)
