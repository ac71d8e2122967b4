"""anew.reincarnation."""
