"""``anew envs``: every environment id anew can make, with its kind (gymnasium, ale or pettingzoo) and,
for ids that need a package this machine lacks, what to install.

Named env_list, not envs, so it is not mistaken for the ``anew.envs`` package it lists.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import tyro

from anew.envs import list_envs, missing_requirement


@dataclass
class EnvsArgs:
    """List environment ids with their kind (gymnasium, ale or pettingzoo) and what an id needs installed."""

    filter: str = ""
    """Only ids containing this text (case-insensitive)."""
    anew_only: bool = False
    """Only anew's own environments (the anew/ namespace)."""


def main(argv: list[str] | None = None) -> int:
    args = tyro.cli(EnvsArgs, args=argv, prog="anew envs")
    rows = [(i, k) for i, k in list_envs() if args.filter.lower() in i.lower()]
    if args.anew_only:
        rows = [(i, k) for i, k in rows if i.startswith("anew/")]
    if not rows:
        what = f"contains {args.filter!r}" if args.filter else "matches"
        where = " in the anew/ namespace" * args.anew_only
        print(f"anew envs: no environment id {what}{where}; `anew envs` lists them all", file=sys.stderr)
        return 1
    width = max(len(i) for i, _ in rows)
    for env_id, kind in rows:
        install = missing_requirement(env_id) if kind != "pettingzoo" else ""
        print(f"{env_id.ljust(width)}  {kind.ljust(10)}  {'needs ' + install if install else ''}".rstrip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
