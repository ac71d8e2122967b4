"""anew.envs: environments and their registration under the ``anew/`` namespace."""


def register_envs() -> None:
    """Register every anew environment with Gymnasium (idempotent)."""
