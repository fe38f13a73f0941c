"""Lightning's floor: `bare_trainer.py RUN_DIR/config.yaml EPOCHS [--logged]` trains that run's data, model, optimizer.

No logger, checkpoints, callbacks, metrics, progress bar, model summary or sanity check: an epoch of Lightning itself
with the same rows and batches (the project's data module), normalisation, net and optimizer. With `--logged`, the
idiom's floor: the loss logged with `self.log` and the default metrics (mean absolute error and R², a torchmetrics
`MetricCollection` a stage) computed each epoch and logged with `self.log_dict`, as the project does, and nothing
else. Prints one JSON line: the line it trained, in raw units, and `epoch_ms`, the steady period of an epoch from the
end of the first to the end of the last (noted by the module's own `on_train_epoch_end`: a hook, not a callback).
"""

import json
import pydoc
import sys
import time
from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F
import yaml
from torchmetrics import MeanAbsoluteError, MetricCollection, R2Score

from thermometer.data import TemperatureDataModule
from thermometer.linear import linear_fit, trained_parameters
from thermometer.system import Normalize


class Bare(L.LightningModule):
    """Normalisation, net and MSE loss: a training step, a validation forward, and the time at each epoch's end."""

    def __init__(self, normalize: torch.nn.Module, net: torch.nn.Module, optimizer: dict, logged: bool) -> None:
        super().__init__()
        self.normalize, self.net, self.optimizer, self.epoch_ends = normalize, net, optimizer, []
        self.logged = logged
        metrics = MetricCollection([MeanAbsoluteError(), R2Score()])
        self.metrics = {"train": metrics.clone(prefix="train/"), "val": metrics.clone(prefix="val/")}

    def step(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> torch.Tensor:
        t_p = self.net(self.normalize(batch[0])).reshape(-1)
        loss = F.mse_loss(t_p, batch[1])
        if self.logged:
            self.metrics[stage].update(t_p, batch[1])
            self.log(f"{stage}/loss", loss, on_step=False, on_epoch=True, batch_size=len(t_p))
        return loss

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self.step(batch, "train")

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self.step(batch, "val")

    def log_metrics(self, stage: str) -> None:
        if self.logged:
            self.log_dict(self.metrics[stage].compute(), on_step=False, on_epoch=True)
            self.metrics[stage].reset()

    def on_validation_epoch_end(self) -> None:
        self.log_metrics("val")

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return pydoc.locate(self.optimizer["class_path"])(self.parameters(), **self.optimizer["init_args"])

    def on_train_epoch_end(self) -> None:
        self.log_metrics("train")
        self.epoch_ends.append(time.perf_counter())


if __name__ == "__main__":
    config, epochs = yaml.safe_load(Path(sys.argv[1]).read_text()), int(sys.argv[2])
    L.seed_everything(config["seed_everything"], verbose=False)
    data, model = TemperatureDataModule(**config["data"]), config["model"]
    data.load()
    normalize = Normalize(len(data.input_columns), model["normalize"], model["scale"])
    normalize.fit(data.train_inputs)
    net = pydoc.locate(model["net"]["class_path"])(**model["net"]["init_args"])
    bare = Bare(normalize, net, model["optimizer"], logged="--logged" in sys.argv[3:])
    off = dict.fromkeys(["logger", "enable_checkpointing", "enable_progress_bar", "enable_model_summary"], False)
    trainer = L.Trainer(max_epochs=epochs, accelerator=config["trainer"]["accelerator"], num_sanity_val_steps=0, **off)
    trainer.fit(bare, datamodule=data)
    weight, bias = linear_fit(net, normalize, data.train_inputs, data.train_targets).raw(*trained_parameters(net))
    epoch_ms = 1000 * (bare.epoch_ends[-1] - bare.epoch_ends[0]) / (len(bare.epoch_ends) - 1)
    print(json.dumps({"weight": weight.item(), "bias": bias, "epochs": len(bare.epoch_ends), "epoch_ms": epoch_ms}))
