"""Train the thermometer: `python scripts/train.py [fit|validate|test|predict] [--options]`."""

import gc

from entry import load_main

if __name__ == "__main__":
    main = load_main("thermometer.cli", "anything")
    try:
        main()
    finally:
        # The process ends here: its objects go back to the OS with it. Left to the interpreter's last garbage
        # collection, the hundreds of thousands that torch and Lightning made would take about a second more.
        gc.freeze()
