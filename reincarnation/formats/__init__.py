"""Dopamine's file formats, read and written without JAX, TensorFlow or orbax.

* :class:`DopamineReplay` - legacy ``$store$_*_ckpt.N.gz`` replay (DQN Replay Dataset, teacher buffers),
  sampled exactly like ``OutOfGraphReplayBuffer``; :class:`DopamineReplayWriter` /
  :func:`write_dopamine_replay` write that format (``dopamine_replay_files``).
* :class:`DopamineJaxReplay` - Dopamine 4.1.x ``<N>/replay/checkpoint.msgpack`` replay.
* :func:`load_dopamine_network` / :func:`convert_dopamine_checkpoint` - ``ckpt.N`` JAX DQN and Rainbow
  agents as anew ``QNetwork`` modules / state_dicts.
* :func:`safe_load` - the restricted unpickler every Dopamine pickle goes through.

The teacher-student methods that use these files live one level up, in ``anew.reincarnation``.
"""

from anew.reincarnation.formats.dopamine_checkpoint import (
    DopamineConversion,
    DopamineNetwork,
    DopamineNetworkOutput,
    convert_dopamine_checkpoint,
    load_dopamine_bundle,
    load_dopamine_network,
)
from anew.reincarnation.formats.dopamine_jax_replay import DopamineJaxReplay
from anew.reincarnation.formats.dopamine_replay import DopamineReplay
from anew.reincarnation.formats.dopamine_replay_files import DopamineReplayWriter, write_dopamine_replay
from anew.reincarnation.formats.safe_pickle import UnsafePickleError, safe_load, safe_loads

__all__ = [
    "DopamineConversion",
    "DopamineJaxReplay",
    "DopamineNetwork",
    "DopamineNetworkOutput",
    "DopamineReplay",
    "DopamineReplayWriter",
    "UnsafePickleError",
    "convert_dopamine_checkpoint",
    "load_dopamine_bundle",
    "load_dopamine_network",
    "safe_load",
    "safe_loads",
    "write_dopamine_replay",
]
