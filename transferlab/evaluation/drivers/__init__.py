"""Stage drivers: the rank and evaluate stages' work, composed from the packages beside."""
