"""The physical limit: the book's plain PyTorch loop (chapter 5), `t_un = 0.1 * t_u`, SGD at lr 1e-2, torch alone.

    python plain_book.py                          # the book's first loop: 5000 epochs on the 11 readings
    python plain_book.py --split --epochs 3000    # its split: train on 9 readings, validate on 2 each epoch

Prints one JSON line: the line in raw units, the last losses, and `epoch_ms`, the steady period of an epoch.
"""

import argparse
import json
import time

import torch

T_C = torch.tensor([0.5, 14.0, 15.0, 28.0, 11.0, 8.0, 3.0, -4.0, 6.0, 13.0, 21.0])
T_U = torch.tensor([35.7, 55.9, 58.2, 81.9, 56.3, 48.9, 33.9, 21.8, 48.4, 60.4, 68.4])
TRAIN, VAL = [9, 6, 5, 8, 4, 7, 0, 1, 3], [2, 10]  # the project's split of them (data.split_seed 149)

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", action="store_true", help="train on 9 readings, validate on 2 each epoch")
    parser.add_argument("--epochs", type=int, default=5000)
    args = parser.parse_args()
    rows, val_loss, ends = TRAIN if args.split else slice(None), None, []
    train_t_un, train_t_c, val_t_un, val_t_c = 0.1 * T_U[rows], T_C[rows], 0.1 * T_U[VAL], T_C[VAL]
    params = torch.tensor([1.0, 0.0], requires_grad=True)
    optimizer = torch.optim.SGD([params], lr=1e-2)
    for _ in range(args.epochs):
        train_loss = ((params[0] * train_t_un + params[1] - train_t_c) ** 2).mean()
        if args.split:
            with torch.no_grad():
                val_loss = ((params[0] * val_t_un + params[1] - val_t_c) ** 2).mean().item()
        optimizer.zero_grad()
        train_loss.backward()
        optimizer.step()
        ends.append(time.perf_counter())
    (weight, bias), epoch_ms = params.tolist(), 1000 * (ends[-1] - ends[0]) / (args.epochs - 1)
    losses = {"train_loss": train_loss.item(), "val_loss": val_loss}
    print(json.dumps({"weight": 0.1 * weight, "bias": bias, **losses, "epochs": args.epochs, "epoch_ms": epoch_ms}))
