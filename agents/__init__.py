"""anew.agents."""
