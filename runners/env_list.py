"""``anew envs``: every environment id anew can make, with its kind (gymnasium or pettingzoo).

Named env_list, not envs, so it is not mistaken for the ``anew.envs`` package it lists.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import tyro

from anew.envs import list_envs


@dataclass
class EnvsArgs:
    """List environment ids with their kind."""

    filter: str = ""
    """Only ids containing this text (case-insensitive)."""
    anew_only: bool = False
    """Only anew's own environments (the anew/ namespace)."""


def main(argv: list[str] | None = None) -> int:
    args = tyro.cli(EnvsArgs, args=argv, prog="anew envs")
    rows = [(i, k) for i, k in list_envs() if args.filter.lower() in i.lower()]
    if args.anew_only:
        rows = [(i, k) for i, k in rows if i.startswith("anew/")]
    width = max((len(i) for i, _ in rows), default=0)
    for env_id, kind in rows:
        print(f"{env_id.ljust(width)}  {kind}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
