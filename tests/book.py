"""The chapter's data and the book's split, typed from the reference so tests do not trust the bundled CSV."""

import torch

T_C = torch.tensor([0.5, 14.0, 15.0, 28.0, 11.0, 8.0, 3.0, -4.0, 6.0, 13.0, 21.0])
T_U = torch.tensor([35.7, 55.9, 58.2, 81.9, 56.3, 48.9, 33.9, 21.8, 48.4, 60.4, 68.4])
BOOK_TRAIN_ROWS = [9, 6, 5, 8, 4, 7, 0, 1, 3]
BOOK_VAL_ROWS = [2, 10]
