"""Training: building components, the one loop, evaluation, training state."""
