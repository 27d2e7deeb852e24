#!/usr/bin/python3
"""mount-loader.py: time a PyTorch DataLoader reading files as raw bytes.

  /usr/bin/python3 mount-loader.py ROOT LIST [--workers 2] [--batch 32]
                                   [--epochs 2] [--unbuffered]

LIST holds paths relative to ROOT separated by NUL bytes. Each epoch reads
every file once through a DataLoader (shuffle off, so every run reads the
same order); __getitem__ opens the file, reads all of it and closes it, as
a typical raw-bytes dataset does. Prints one line per epoch:

  epoch N files F bytes B seconds S

Run it with Debian's interpreter (python3-torch is installed for it), not
another python3 that may be first on PATH. --unbuffered opens with
buffering=0, which skips the isatty() ioctl that a buffered open() of
Python < 3.14 sends for every file (FUSE forwards each one).
"""

import argparse
import os
import sys
import time

import torch
from torch.utils.data import DataLoader, Dataset


class Files(Dataset):
    def __init__(self, root, names, unbuffered):
        self.paths = [os.path.join(root, n) for n in names]
        self.buffering = 0 if unbuffered else -1

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        with open(self.paths[i], "rb", buffering=self.buffering) as f:
            data = f.read() if self.buffering else f.readall()
        return len(data)


def collate(sizes):
    return torch.tensor(sizes, dtype=torch.int64)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("root")
    p.add_argument("list")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--unbuffered", action="store_true")
    a = p.parse_args()
    with open(a.list, "rb") as f:
        names = [os.fsdecode(n) for n in f.read().split(b"\0") if n]
    if not names:
        sys.exit("mount-loader: no files in %s" % a.list)
    ds = Files(a.root, names, a.unbuffered)
    for epoch in range(1, a.epochs + 1):
        loader = DataLoader(ds, batch_size=a.batch, num_workers=a.workers,
                            shuffle=False, collate_fn=collate)
        t0 = time.monotonic()
        files = total = 0
        for batch in loader:
            files += len(batch)
            total += int(batch.sum())
        secs = time.monotonic() - t0
        if files != len(names):
            sys.exit("mount-loader: read %d of %d files" % (files, len(names)))
        print("epoch %d files %d bytes %d seconds %.6f" %
              (epoch, files, total, secs), flush=True)


if __name__ == "__main__":
    main()
