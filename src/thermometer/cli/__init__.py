"""The command line: LightningCLI wiring and defaults, the checks before anything runs, what a resume may change."""

from thermometer.cli.main import ThermometerCLI, main

__all__ = ["ThermometerCLI", "main"]
