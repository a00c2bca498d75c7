"""Weighted mixture of datatrove-tokenized folders, read with datatrove's own dataset class.

A run reads one mixture per data stage: stage k fills the windows of steps
[start_k, start_{k+1}) x global batch with its own weights (and, optionally, its own sequence
length). Each source continues where the previous stages left it (no re-reading from its start at
a stage switch); a source shorter than all the stages ask of it wraps around (``epochs``).
Every window's (source, position) is a pure function of its index, so the Trainer's sequential
sampler, which skips the consumed batches on resume, gives exactly the uninterrupted run.
"""

from __future__ import annotations

import math

import numpy as np

from zflow.tokenized import folder_metadata


def blend_order(weights, total: int) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic interleaving: sample j of source k is placed at key (j + 0.5) / w_k.

    Returns (source index, index within source) for ``total`` samples; every prefix of the
    order follows the weights as closely as integers allow. A weight of 0 never draws.
    """
    w = np.asarray(weights, dtype=np.float64)
    w = w / w.sum()
    keys, src, idx = [], [], []
    for k, wk in enumerate(w):
        if wk <= 0:
            continue
        n = int(np.ceil(total * wk)) + 1
        j = np.arange(n)
        keys.append((j + 0.5) / wk)
        src.append(np.full(n, k, dtype=np.int32))
        idx.append(j)
    keys, src, idx = np.concatenate(keys), np.concatenate(src), np.concatenate(idx)
    order = np.lexsort((src, keys))[:total]
    return src[order], idx[order]


IMPLICIT_STAGE = "main"  # the one stage of a run that declares none (hf backend)


def spec_stages(spec: dict, implicit_name: str = IMPLICIT_STAGE) -> list[dict]:
    """The data stages of a pretraining spec (zflow.plan): [{name, start_step, sequence_length,
    data: [{source, folder, weight}]}]; without declared stages, one stage reading spec["data"]."""
    return spec.get("stages") or [{"name": implicit_name, "start_step": 0,
                                   "sequence_length": None, "data": spec["data"]}]


def stage_bounds(starts, train_steps: int, global_batch: int) -> list[tuple[int, int]]:
    """The window range [begin, end) of each stage: steps [start_k, start_{k+1}) x global batch,
    the last stage up to ``train_steps`` (a stage starting at or after it gets no window)."""
    ends = [*starts[1:], train_steps]
    return [(min(s, train_steps) * global_batch, min(max(e, s), train_steps) * global_batch)
            for s, e in zip(starts, ends)]


class MixtureDataset:
    """``train_steps x global_batch`` training windows drawn from several folders, stage by stage.

    ``stages``: [{"name", "start_step", "weights" (one per folder, 0 = not read in that stage),
    "sequence_length" (None: ``seq_len``)}], start steps increasing from 0. Each item is
    ``input_ids`` and ``labels`` (the first seq_len tokens of a window of seq_len + 1; the model
    shifts the labels itself).
    """

    def __init__(self, folders, stages, seq_len: int, global_batch: int, train_steps: int):
        import torch  # noqa: F401  (datatrove returns torch tensors)

        self.folders = [str(f) for f in folders]
        self.stages = [{**s, "sequence_length": s.get("sequence_length") or seq_len}
                       for s in stages]
        self._datasets: dict[tuple[int, int], object] = {}
        bounds = stage_bounds([s["start_step"] for s in self.stages], train_steps, global_batch)
        self.begins = np.array([b for b, _ in bounds], dtype=np.int64)
        self.orders, tokens_read = [], [0] * len(self.folders)
        # per stage and source: windows read, and the window index the stage starts at
        self.windows = [[0] * len(self.folders) for _ in self.stages]
        self.offsets = [[0] * len(self.folders) for _ in self.stages]
        for k, (stage, (b, e)) in enumerate(zip(self.stages, bounds)):
            L = stage["sequence_length"]
            src, idx = blend_order(stage["weights"], e - b) if e > b else (np.zeros(0, int),) * 2
            self.orders.append((src, idx))
            for f in range(len(self.folders)):
                n = int((src == f).sum())
                if stage["weights"][f] > 0:
                    self.dataset(f, L)  # fail early on a folder too short for one window
                # continue where the source stopped, in tokens (a new length starts at the
                # next window boundary of that length)
                self.offsets[k][f] = math.ceil(tokens_read[f] / (L + 1))
                self.windows[k][f] = n
                tokens_read[f] = (self.offsets[k][f] + n) * (L + 1)
        self.total = int(bounds[-1][1]) if bounds else 0

    def dataset(self, f: int, seq_len: int):
        """datatrove's dataset of folder ``f`` in windows of ``seq_len + 1`` tokens."""
        key = (f, seq_len)
        if key not in self._datasets:
            from datatrove.utils.dataset import DatatroveFolderDataset

            folder = self.folders[f]
            d = DatatroveFolderDataset(folder, seq_len=seq_len,
                                       token_size=folder_metadata(folder)[1], recursive=True,
                                       filename_pattern="**/*.ds")  # shard groups: sub-folders
            if len(d) == 0:
                raise ValueError(f"tokenized folder {folder} holds fewer than {seq_len + 1} tokens")
            self._datasets[key] = d
        return self._datasets[key]

    def length(self, f: int, seq_len: int) -> int:
        return len(self.dataset(f, seq_len))

    def epochs(self, k: int, f: int) -> float:
        """How many times stage k reads through source f (windows read / windows available)."""
        n = self.windows[k][f]
        return n / self.length(f, self.stages[k]["sequence_length"]) if n else 0.0

    def stage_of(self, i: int) -> int:
        return int(np.searchsorted(self.begins, i, side="right")) - 1

    def tokens_through(self, step: int, global_batch: int) -> int:
        """Tokens trained on in steps 1..``step`` (each stage at its own sequence length)."""
        end, total = step * global_batch, 0
        for k, st in enumerate(self.stages):
            begin = int(self.begins[k])
            stop = min(end, begin + sum(self.windows[k]))
            total += max(stop - begin, 0) * st["sequence_length"]
        return total

    def __len__(self):
        return self.total

    def __getitem__(self, i):
        k = self.stage_of(i)
        src, idx = self.orders[k]
        local = i - int(self.begins[k])
        f = int(src[local])
        d = self.dataset(f, self.stages[k]["sequence_length"])
        window = d[(self.offsets[k][f] + int(idx[local])) % len(d)]["input_ids"].long()
        ids = window[:-1]
        # transformers shifts labels inside the model: position i is trained on token i + 1
        return {"input_ids": ids, "labels": ids.clone()}

    def accounting(self) -> list[dict]:
        """Per stage and source: windows and tokens consumed, epochs over the source."""
        out = []
        for k, s in enumerate(self.stages):
            L = s["sequence_length"]
            out.append({"name": s["name"], "start_step": s["start_step"], "sequence_length": L,
                        "sources": [{"folder": self.folders[f], "weight": s["weights"][f],
                                     "windows": self.windows[k][f],
                                     "tokens": self.windows[k][f] * L,
                                     "epochs": round(self.epochs(k, f), 4)}
                                    for f in range(len(self.folders))]})
        return out
