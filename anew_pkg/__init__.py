"""anew: never start from scratch. Train, reincarnate and evaluate RL agents in PyTorch."""

__version__ = "0.1.0"
