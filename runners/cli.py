"""The ``anew`` command: one subcommand per module of ``anew.runners``.

Each subcommand module exposes ``main(argv: list[str] | None) -> int`` and also runs as
``python -m anew.runners.<module>`` (the module is named after the command, except ``anew envs``:
``anew.runners.env_list``). Modules are imported lazily so ``anew envs`` stays fast.
"""

from __future__ import annotations

import importlib
import os
import sys

from anew.errors import AnewError

COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("anew.runners.train", "train an agent: anew train dqn --env-id CartPole-v1"),
    "resume": ("anew.runners.resume", "continue a run exactly where it stopped: anew resume RUN_DIR"),
    "evaluate": ("anew.runners.evaluate", "evaluate a checkpoint: anew evaluate CHECKPOINT --episodes N"),
    "reincarnate": (
        "anew.runners.reincarnate",
        "teach a student from a teacher: anew reincarnate qdagger ...",
    ),
    "report": ("anew.runners.report", "IQM tables and plots from run directories: anew report runs/*"),
    "sweep": ("anew.runners.sweep", "agents x envs x seeds, locally or on Ray: anew sweep SPEC.toml"),
    "envs": ("anew.runners.env_list", "list every registered environment id with its kind"),
    "convert": ("anew.runners.convert", "make a foreign checkpoint an anew one: anew convert dopamine DIR"),
    "solve": ("anew.runners.solve", "exact optimal costs for inventory problems: anew solve lost-sales"),
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: anew COMMAND [ARGS...]   (anew COMMAND --help for its flags)", "", "commands:"]
    lines += [f"  {name.ljust(width)}  {text}" for name, (_, text) in COMMANDS.items()]
    return "\n".join(lines)


def run_command(module_name: str, argv: list[str]) -> int:
    """Run one command module, turning AnewError into a one-line message and exit code 2."""
    try:
        module = importlib.import_module(module_name)
        return int(module.main(argv) or 0)
    except AnewError as error:
        print(f"anew: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("anew: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into a reader that stopped (anew envs | head): not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0 if argv else 2
    if argv[0] in ("-V", "--version"):
        from anew import __version__

        print(f"anew {__version__}")
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"anew: error: unknown command {name!r}; choose one of {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    return run_command(COMMANDS[name][0], rest)


if __name__ == "__main__":
    sys.exit(main())
