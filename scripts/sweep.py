"""Sweep any options of the training command with Optuna: `python scripts/sweep.py --config configs/sweeps/<x>.yaml`."""

import signal
import sys

if __name__ == "__main__":
    try:
        from thermometer.sweep import main  # seconds of imports: Lightning, torch, Optuna
    except KeyboardInterrupt:  # Ctrl-C before anything ran
        print("\nInterrupted before the sweep began; nothing was written.", file=sys.stderr)
        sys.exit(128 + signal.SIGINT)
    main()
