"""Train the thermometer: `python scripts/train.py [fit|validate|test|predict] [--options]`."""

from thermometer.cli import main

if __name__ == "__main__":
    main()
