"""Train the thermometer: `python scripts/train.py [fit|validate|test|predict] [--options]`."""

import gc
import signal
import sys

if __name__ == "__main__":
    try:
        from thermometer.cli import main  # seconds of imports: Lightning, torch
    except KeyboardInterrupt:  # Ctrl-C before anything ran
        print("\nInterrupted before anything ran; nothing was written.", file=sys.stderr)
        sys.exit(128 + signal.SIGINT)
    try:
        main()
    finally:
        # The process ends here: its objects go back to the OS with it. Left to the interpreter's last garbage
        # collection, the hundreds of thousands that torch and Lightning made would take about a second more.
        gc.freeze()
