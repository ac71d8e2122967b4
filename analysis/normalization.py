"""Score normalisation: every scheme maps a raw return to ``(score - low) / (high - low)``.

So 0 means "as good as the baseline" and 1 "as good as the reference"; rliable expects scores on such a
common scale before aggregating across tasks. The schemes differ only in where ``low`` and ``high``
come from:

- ``atari-human``: ``low`` = random-agent score, ``high`` = human score of the game (tables below).
- ``teacher`` (reincarnation): ``low`` = ``random_return``, ``high`` = ``teacher_return``, read from the
  run's ``eval.json`` evaluation ``extra`` (the reincarnation runner writes both); on an Atari game a
  missing ``random_return`` falls back to the random score of the table below, as the reincarnating_rl
  code does.
- ``reference``: ``low`` = ``random_return``, ``high`` = ``reference_return`` from ``extra`` (an env that
  knows its optimum, e.g. an inventory instance, writes the optimal policy's return as
  ``reference_return``; 1.0 then means optimal).
- ``minmax``: per task, from a bounds file ``{env_id: [low, high]}`` (JSON or TOML), or else the lowest
  and highest score any run of any agent reached on that task (data-driven: the scale then depends on
  the set of runs compared, which the report states).

Atari random and human scores (``ATARI_RANDOM_HUMAN``):
- Source: google/dopamine ``dopamine/labs/atari_100k/normalization_utils.py`` (``ATARI_RANDOM_SCORES``,
  ``ATARI_HUMAN_SCORES``), the tables behind rliable's Atari 100k results. google-research/reincarnating_rl
  ``reincarnating_rl/atari_scores.py`` has identical random scores. They go back to the DQN (Mnih et al.
  2015) and Dueling DQN (Wang et al. 2016) papers: random and professional-human-tester scores with
  episodes capped at 108,000 frames (30 minutes).
- Dopamine's human table lacks Defender and Surround; their human scores (18688.9 and 6.5) come from
  google-deepmind/dqn_zoo ``dqn_zoo/atari_data.py``.
- Video Pinball: Dopamine's random score is 0.0, which is used here; DQN Zoo uses 16256.9 instead (its
  comment: the random score there sometimes exceeds the human one under other evaluation protocols).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the same parser as the tomli package
    import tomli as tomllib

from anew.errors import AnewError

# game key -> (random score, human score); keys are lower-case game names without separators.
ATARI_RANDOM_HUMAN: dict[str, tuple[float, float]] = {
    "alien": (227.8, 7127.7),
    "amidar": (5.8, 1719.5),
    "assault": (222.4, 742.0),
    "asterix": (210.0, 8503.3),
    "asteroids": (719.1, 47388.7),
    "atlantis": (12850.0, 29028.1),
    "bankheist": (14.2, 753.1),
    "battlezone": (2360.0, 37187.5),
    "beamrider": (363.9, 16926.5),
    "berzerk": (123.7, 2630.4),
    "bowling": (23.1, 160.7),
    "boxing": (0.1, 12.1),
    "breakout": (1.7, 30.5),
    "centipede": (2090.9, 12017.0),
    "choppercommand": (811.0, 7387.8),
    "crazyclimber": (10780.5, 35829.4),
    "defender": (2874.5, 18688.9),
    "demonattack": (152.1, 1971.0),
    "doubledunk": (-18.6, -16.4),
    "enduro": (0.0, 860.5),
    "fishingderby": (-91.7, -38.7),
    "freeway": (0.0, 29.6),
    "frostbite": (65.2, 4334.7),
    "gopher": (257.6, 2412.5),
    "gravitar": (173.0, 3351.4),
    "hero": (1027.0, 30826.4),
    "icehockey": (-11.2, 0.9),
    "jamesbond": (29.0, 302.8),
    "kangaroo": (52.0, 3035.0),
    "krull": (1598.0, 2665.5),
    "kungfumaster": (258.5, 22736.3),
    "montezumarevenge": (0.0, 4753.3),
    "mspacman": (307.3, 6951.6),
    "namethisgame": (2292.3, 8049.0),
    "phoenix": (761.4, 7242.6),
    "pitfall": (-229.4, 6463.7),
    "pong": (-20.7, 14.6),
    "privateeye": (24.9, 69571.3),
    "qbert": (163.9, 13455.0),
    "riverraid": (1338.5, 17118.0),
    "roadrunner": (11.5, 7845.0),
    "robotank": (2.2, 11.9),
    "seaquest": (68.4, 42054.7),
    "skiing": (-17098.1, -4336.9),
    "solaris": (1236.3, 12326.7),
    "spaceinvaders": (148.0, 1668.7),
    "stargunner": (664.0, 10250.0),
    "surround": (-10.0, 6.5),
    "tennis": (-23.8, -8.3),
    "timepilot": (3568.0, 5229.2),
    "tutankham": (11.4, 167.6),
    "upndown": (533.4, 11693.2),
    "venture": (0.0, 1187.5),
    "videopinball": (0.0, 17667.9),
    "wizardofwor": (563.5, 4756.5),
    "yarsrevenge": (3092.9, 54576.9),
    "zaxxon": (32.5, 9173.3),
}

# The Atari 100k benchmark's 26 games (Kaiser et al. 2020), as keys of the table above.
ATARI_100K_GAMES = [
    "alien",
    "amidar",
    "assault",
    "asterix",
    "bankheist",
    "battlezone",
    "boxing",
    "breakout",
    "choppercommand",
    "crazyclimber",
    "demonattack",
    "freeway",
    "frostbite",
    "gopher",
    "hero",
    "jamesbond",
    "kangaroo",
    "krull",
    "kungfumaster",
    "mspacman",
    "pong",
    "privateeye",
    "qbert",
    "roadrunner",
    "seaquest",
    "upndown",
]

SCHEMES = ("none", "atari-human", "teacher", "reference", "minmax")


@dataclass(frozen=True)
class Bounds:
    """The affine map ``(score - low) / (high - low)``; ``source`` says where the two numbers came from."""

    low: float
    high: float
    source: str = ""

    def __post_init__(self) -> None:
        if not (math.isfinite(self.low) and math.isfinite(self.high)) or self.high == self.low:
            raise AnewError(
                f"cannot normalise with low={self.low} and high={self.high} ({self.source}): they must be "
                "finite and different; fix the reference scores or choose another --normalize scheme"
            )

    def apply(self, score: float) -> float:
        return (score - self.low) / (self.high - self.low)


def atari_game_key(env_id: str) -> str:
    """``ALE/MsPacman-v5``, ``MsPacmanNoFrameskip-v4``, ``ms_pacman`` and ``mspacman`` -> ``mspacman``."""
    name = env_id.rsplit("/", 1)[-1]
    name = re.sub(r"-v\d+$", "", name)
    name = re.sub(r"(NoFrameskip|Deterministic)$", "", name)
    return re.sub(r"[^a-z0-9]", "", name.lower())


def atari_human_bounds(env_id: str) -> Bounds:
    """Random and human score of the Atari game behind ``env_id``."""
    key = atari_game_key(env_id)
    if key not in ATARI_RANDOM_HUMAN:
        raise AnewError(
            f"no Atari random/human scores for game {key!r} (env {env_id!r}); the table knows the 57 "
            "Atari games (e.g. ALE/Pong-v5): use --normalize minmax, reference or none for other envs"
        )
    random_score, human_score = ATARI_RANDOM_HUMAN[key]
    return Bounds(random_score, human_score, f"Atari random/human table, game {key}")


def _number(extra: Mapping[str, object], key: str, where: str) -> float | None:
    value = extra.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise AnewError(f"{where}: extra[{key!r}] must be a number, got {value!r}")
    return float(value)


def teacher_bounds(extra: Mapping[str, object], env_id: str, where: str) -> Bounds:
    """Teacher-normalised: ``(student - random) / (teacher - random)`` from ``extra`` of an evaluation."""
    teacher = _number(extra, "teacher_return", where)
    if teacher is None:
        raise AnewError(
            f"{where} has no extra['teacher_return'] for --normalize teacher; reincarnation runs write it "
            "to eval.json, for other runs use --normalize atari-human, minmax or none"
        )
    random_return = _number(extra, "random_return", where)
    if random_return is None:
        if atari_game_key(env_id) not in ATARI_RANDOM_HUMAN:
            raise AnewError(
                f"{where} has no extra['random_return'] and {env_id!r} is not an Atari game with a known "
                "random score; write random_return into the evaluation's extra"
            )
        random_return = ATARI_RANDOM_HUMAN[atari_game_key(env_id)][0]
    return Bounds(random_return, teacher, f"teacher/random returns of {where}")


def reference_bounds(extra: Mapping[str, object], where: str) -> Bounds:
    """Reference-normalised: ``(score - random) / (reference - random)``, e.g. reference = optimum."""
    reference = _number(extra, "reference_return", where)
    random_return = _number(extra, "random_return", where)
    if reference is None or random_return is None:
        raise AnewError(
            f"{where} needs extra['reference_return'] and extra['random_return'] for --normalize reference; "
            "use --normalize minmax --bounds FILE to give them per task instead"
        )
    return Bounds(random_return, reference, f"reference/random returns of {where}")


def data_bounds(scores: Iterable[float], task: str) -> Bounds:
    """Min-max bounds from the scores themselves (all runs of all agents on one task)."""
    values = list(scores)
    low, high = min(values), max(values)
    if low == high:
        raise AnewError(
            f"every run scores {low} on task {task!r}, so min-max normalisation is undefined; "
            "give bounds with --bounds FILE or use --normalize none"
        )
    return Bounds(low, high, f"min/max score over all runs on {task}")


def load_bounds_file(path: Path) -> dict[str, Bounds]:
    """``{env_id: [low, high]}`` or ``{env_id: {"low": x, "high": y}}`` from a .json or .toml file."""
    try:
        text = Path(path).read_text()
        table = tomllib.loads(text) if Path(path).suffix == ".toml" else json.loads(text)
    except (OSError, ValueError) as error:
        raise AnewError(
            f"cannot read bounds file {path}: {error}; write {{env_id: [low, high]}} as JSON or TOML"
        )
    bounds = {}
    for env_id, value in table.items():
        pair = (value.get("low"), value.get("high")) if isinstance(value, dict) else value
        if not (isinstance(pair, (list, tuple)) and len(pair) == 2):
            raise AnewError(f"bounds file {path}: entry {env_id!r} must be [low, high], got {value!r}")
        try:
            bounds[env_id] = Bounds(float(pair[0]), float(pair[1]), f"bounds file {path}")
        except (TypeError, ValueError):
            raise AnewError(f"bounds file {path}: entry {env_id!r} must hold two numbers, got {value!r}")
    return bounds
