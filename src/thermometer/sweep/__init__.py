"""Sweeps: an Optuna study over any options of the training command, each trial an ordinary run."""

from thermometer.sweep.main import main

__all__ = ["main"]
