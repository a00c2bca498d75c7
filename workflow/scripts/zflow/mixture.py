"""Weighted mixture of datatrove-tokenized folders, read with datatrove's own dataset class."""

from __future__ import annotations

import numpy as np

from zflow.tokenized import folder_metadata


def blend_order(weights, total: int) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic interleaving: sample j of source k is placed at key (j + 0.5) / w_k.

    Returns (source index, index within source) for ``total`` samples; every prefix of the
    order follows the weights as closely as integers allow.
    """
    w = np.asarray(weights, dtype=np.float64)
    w = w / w.sum()
    keys, src, idx = [], [], []
    for k, wk in enumerate(w):
        n = int(np.ceil(total * wk)) + 1
        j = np.arange(n)
        keys.append((j + 0.5) / wk)
        src.append(np.full(n, k, dtype=np.int32))
        idx.append(j)
    keys, src, idx = np.concatenate(keys), np.concatenate(src), np.concatenate(idx)
    order = np.lexsort((src, keys))[:total]
    return src[order], idx[order]


class MixtureDataset:
    """``total`` training windows of ``seq_len + 1`` tokens drawn from several folders.

    Each item is ``input_ids`` and ``labels`` (the first seq_len tokens of the window; the
    model shifts the labels itself).
    A source shorter than its share is re-read from its start (``epochs`` reports how often).
    """

    def __init__(self, folders, weights, seq_len: int, total: int):
        import torch  # noqa: F401  (datatrove returns torch tensors)
        from datatrove.utils.dataset import DatatroveFolderDataset

        self.datasets = [
            DatatroveFolderDataset(str(f), seq_len=seq_len, token_size=folder_metadata(f)[1],
                                   recursive=False)
            for f in folders
        ]
        for f, d in zip(folders, self.datasets):
            if len(d) == 0:
                raise ValueError(f"tokenized folder {f} holds fewer than {seq_len + 1} tokens")
        self.src, self.idx = blend_order(weights, total)
        self.lengths = [len(d) for d in self.datasets]
        self.epochs = [
            float((self.src == k).sum()) / n for k, n in enumerate(self.lengths)
        ]

    def __len__(self):
        return len(self.src)

    def __getitem__(self, i):
        k = int(self.src[i])
        window = self.datasets[k][int(self.idx[i]) % self.lengths[k]]["input_ids"].long()
        ids = window[:-1]
        # transformers shifts labels inside the model: position i is trained on token i + 1
        return {"input_ids": ids, "labels": ids.clone()}
