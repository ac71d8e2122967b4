"""anew.runners."""
