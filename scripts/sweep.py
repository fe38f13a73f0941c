"""Sweep any options of the training command with Optuna: `python scripts/sweep.py --config configs/sweeps/<x>.yaml`."""

from entry import load_main

if __name__ == "__main__":
    load_main("thermometer.sweep", "the sweep")()
