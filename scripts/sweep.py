"""Sweep any options of the training command with Optuna: `python scripts/sweep.py --config configs/sweeps/<x>.yaml`."""

from thermometer.sweep import main

if __name__ == "__main__":
    main()
