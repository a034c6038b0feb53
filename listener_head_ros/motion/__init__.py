"""Head motion shaping: smoothing, joint-space limits and velocity limits for listener poses."""
