"""odeattn."""
