"""anew: never start from scratch. Train, reincarnate and evaluate RL agents in PyTorch.

Importing ``anew`` registers every single-agent ``anew/…`` id with Gymnasium (cheaply: no env module is
imported until an env is made), so ``import gymnasium as gym; import anew; gym.register_envs(anew);
gym.make("anew/LostSales-v0")`` works.
"""

__version__ = "0.1.0"

from anew import envs  # registers the anew/ ids on import

__all__ = ["__version__", "envs"]
