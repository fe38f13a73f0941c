"""What the console shows: Lightning's notices a user can act on, no tips or warnings about choices made on purpose."""

from __future__ import annotations

import logging
import warnings

# Lightning's info lines a user cannot act on: tips, the seed (it is in config.yaml), absent accelerators, why
# fit stopped (the summary says it, with the reason), which checkpoint was restored (the command says it),
# and that a signal came (the command says what it stopped).
UNACTIONABLE = (
    "💡 Tip:",
    "Seed set to",
    "GPU available: False",
    "TPU available: False",
    "`Trainer.fit` stopped:",
    "Restoring states from the checkpoint path",
    "Restored all states from the checkpoint",  # the Resume command said which
    "Loaded model weights from the checkpoint",  # --ckpt_path said which
    "Initializing distributed:",  # one per process; Lightning's banner then says how many started
    "\nDetected KeyboardInterrupt",  # the command says in one line what a signal stopped, and its exit status
    "Received SIGTERM:",
)


def _actionable(record: logging.LogRecord) -> bool:
    message = record.getMessage()
    if message.startswith("[rank: "):  # another process's copy: `[rank: 1] Seed set to 42`
        message = message.partition("] ")[2]
    return not message.startswith(UNACTIONABLE)


def quiet_console(subcommand: str) -> None:
    """Hide what a user cannot act on: Lightning's tips and notices, warnings about Lightning's code or our choices."""
    warnings.filterwarnings(
        "ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated", category=FutureWarning
    )
    # val_fraction 0 gives an empty validation list on purpose: the book's first experiments have no validation.
    warnings.filterwarnings("ignore", message="Total length of `list` across ranks is zero", category=UserWarning)
    # Every run gets a fresh version_N (RunLogger), so a non-empty checkpoint directory means a resumed run.
    warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty", category=UserWarning)
    if subcommand != "fit":  # evaluating a checkpoint needs none of its training callbacks' state
        # An evaluation logs to no logger on purpose: its table of results is printed on the console.
        warnings.filterwarnings("ignore", message=r"You called `self.log\(.*no logger configured", category=UserWarning)
        warnings.filterwarnings("ignore", message="The dirpath has changed from", category=UserWarning)
        warnings.filterwarnings("ignore", message="Be aware that when using `ckpt_path`", category=UserWarning)
    if subcommand == "predict":  # PredictionWriter writes rows in order and needs no batch indices
        warnings.filterwarnings("ignore", message="Couldn't infer the batch indices", category=UserWarning)
    for name in ("lightning.pytorch", "lightning.fabric"):
        for handler in logging.getLogger(name).handlers:
            if _actionable not in handler.filters:
                handler.addFilter(_actionable)


def device_hint(error: Exception) -> str:
    """The fix for a device Lightning cannot find here: the pinned torch is a CPU build."""
    if "gpu backend" in str(error) or "CUDA" in str(error) or "MPS" in str(error):
        return (
            " This torch is a CPU build (torch==2.13.0 from requirements.txt): leave --trainer.accelerator out, or "
            "install a CUDA build of torch on a machine with a GPU."
        )
    return ""
