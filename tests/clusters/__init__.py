"""Real engines for the slow tests, brought up on this machine (loopback only)."""
