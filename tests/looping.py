"""`--trainer.callbacks+=tests.looping.Looping`: a script says when its evaluation's loop has begun."""

from pathlib import Path
from typing import Any

from lightning.pytorch import Callback


class Looping(Callback):
    """`looping` appears in the working directory as an evaluation's loop takes its first batch.

    A test's signal then comes inside the loop, however long the start-up took.
    """

    def on_validation_batch_start(self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int, *args: Any) -> None:
        if batch_idx == 0:
            Path("looping").touch()

    on_test_batch_start = on_predict_batch_start = on_validation_batch_start
