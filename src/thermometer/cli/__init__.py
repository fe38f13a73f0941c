"""The command line: LightningCLI wiring and defaults, the checks before anything runs, what a resume may change."""

from thermometer.cli.main import ThermometerCLI, cli_main, main, parse

__all__ = ["ThermometerCLI", "cli_main", "main", "parse"]
