"""Where a run's logs go: `lightning_logs/version_N`, claimed so that runs started together never share one."""

from __future__ import annotations

import os

from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_only


class RunLogger(TensorBoardLogger):
    """Lightning's `TensorBoardLogger`, claiming its `version_N` directory by creating it.

    Lightning picks the next version by listing the directory: two runs started at the same moment pick the same
    number, and the second aborts on the first's `config.yaml`. `os.mkdir` succeeds for exactly one of them; the
    others move on to the next number.
    """

    def _get_next_version(self) -> int:
        version = super()._get_next_version()
        if rank_zero_only.rank != 0:  # other processes are told rank 0's directory
            return version
        os.makedirs(self.root_dir, exist_ok=True)
        while True:
            try:
                os.mkdir(os.path.join(self.root_dir, f"version_{version}"))
                return version
            except FileExistsError:
                version += 1
