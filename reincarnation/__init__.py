"""anew.reincarnation: reuse prior computation (teachers, their replay) and read Dopamine's files.

Dopamine interop (no JAX, TensorFlow or orbax needed), in :mod:`anew.reincarnation.formats` and
re-exported here:

* :class:`DopamineReplay` - legacy ``$store$_*_ckpt.N.gz`` replay (DQN Replay Dataset, teacher buffers),
  sampled exactly like ``OutOfGraphReplayBuffer``; :class:`DopamineReplayWriter` /
  :func:`write_dopamine_replay` write that format.
* :class:`DopamineJaxReplay` - Dopamine 4.1.x ``<N>/replay/checkpoint.msgpack`` replay.
* :func:`load_dopamine_network` / :func:`convert_dopamine_checkpoint` - ``ckpt.N`` JAX DQN and Rainbow
  agents as anew ``QNetwork`` modules / state_dicts.
* :func:`safe_load` - the restricted unpickler every Dopamine pickle goes through.

Teacher-student methods:

* :class:`Teacher` - a frozen Q-function with its own preprocessing (anew agent or Dopamine checkpoint);
  :func:`collect_teacher_replay` rolls it out into a replay, :func:`load_teacher_data` reads teacher replay.
* :class:`ReincarnatingStudent` - QDagger (and, through :data:`METHODS`, kickstarting, JSRL, offline
  pre-training, rehearsal, DQfD, fine-tuning) around an anew DQN or Rainbow agent; :func:`build_student`.
"""

from anew.reincarnation.baselines import METHODS, build_student
from anew.reincarnation.formats import (
    DopamineConversion,
    DopamineJaxReplay,
    DopamineNetwork,
    DopamineNetworkOutput,
    DopamineReplay,
    DopamineReplayWriter,
    UnsafePickleError,
    convert_dopamine_checkpoint,
    load_dopamine_bundle,
    load_dopamine_network,
    safe_load,
    safe_loads,
    write_dopamine_replay,
)
from anew.reincarnation.qdagger import (
    PRESETS,
    ReincarnatingStudent,
    ReincarnationConfig,
    teacher_normalized_score,
    tied_learning_rate,
    weaned_weight,
)
from anew.reincarnation.teachers import (
    Teacher,
    collect_teacher_replay,
    is_dopamine_checkpoint,
    load_teacher_data,
)

__all__ = [
    "METHODS",
    "PRESETS",
    "DopamineConversion",
    "DopamineJaxReplay",
    "DopamineNetwork",
    "DopamineNetworkOutput",
    "DopamineReplay",
    "DopamineReplayWriter",
    "ReincarnatingStudent",
    "ReincarnationConfig",
    "Teacher",
    "UnsafePickleError",
    "build_student",
    "collect_teacher_replay",
    "convert_dopamine_checkpoint",
    "is_dopamine_checkpoint",
    "load_dopamine_bundle",
    "load_dopamine_network",
    "load_teacher_data",
    "safe_load",
    "safe_loads",
    "teacher_normalized_score",
    "tied_learning_rate",
    "weaned_weight",
    "write_dopamine_replay",
]
