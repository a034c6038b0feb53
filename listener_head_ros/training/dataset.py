"""
Training data: cached utterances as network inputs, and fixed-length crops of them.

A fold's utterances are loaded once into memory as ``(T, F)`` feature matrices (the same
:func:`~listener_head_ros.models.frame_features.feature_matrix` the deployed model computes)
and ``(T, 3)`` head angles. Crops are chosen by a generator seeded with (seed, epoch, index), so
a crop does not depend on which process of a distributed run draws it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, List, Tuple

import numpy as np
import torch
from torch.utils.data import Dataset

from listener_head_ros.data.feature_cache import CachedUtteranceInfo, FeatureCache
from listener_head_ros.models.frame_features import feature_matrix


@dataclass
class FoldData:
    """Feature matrices and head targets of a set of utterances, in cache order."""

    infos: List[CachedUtteranceInfo]
    features: List[np.ndarray]  # (T, F) float32 each
    heads: List[np.ndarray]  # (T, 3) float32 radians each

    def __len__(self) -> int:
        return len(self.infos)

    @property
    def n_frames(self) -> int:
        """Return the total number of frames."""
        return sum(len(h) for h in self.heads)


def load_fold(cache: FeatureCache, sessions: Iterable[int]) -> FoldData:
    """Load every utterance of ``sessions`` from ``cache`` into memory."""
    view = cache.select(sessions)
    infos, features, heads = [], [], []
    for i in range(len(view)):
        utterance = view.load(i)
        infos.append(utterance.info)
        features.append(feature_matrix(utterance.features).astype(np.float32))
        heads.append(np.asarray(utterance.head, dtype=np.float32))
    return FoldData(infos, features, heads)


class ListenerCrops(Dataset):
    """Crops of ``crop_frames`` frames: (features, head, mask); short utterances are padded."""

    def __init__(self, data: FoldData, crop_frames: int, seed: int = 0) -> None:
        if not len(data):
            raise ValueError('no utterances to train on')
        self.data, self.crop_frames, self.seed = data, int(crop_frames), int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Draw different crops in each epoch."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        features, head = self.data.features[index], self.data.heads[index]
        n, crop = len(head), self.crop_frames
        rng = np.random.default_rng((self.seed, self.epoch, index))
        start = int(rng.integers(0, n - crop + 1)) if n > crop else 0
        length = min(crop, n)
        x = np.zeros((crop, features.shape[1]), dtype=np.float32)
        y = np.zeros((crop, 3), dtype=np.float32)
        mask = np.zeros(crop, dtype=bool)
        x[:length], y[:length] = features[start:start + length], head[start:start + length]
        mask[:length] = True
        return torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(mask)
