"""How a run is kept: atomic writes, checkpoints, stop signals, and its directory and logger."""
