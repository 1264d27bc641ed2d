"""Server inventory: what the fleet looks like, built from Salt grains and presence."""
