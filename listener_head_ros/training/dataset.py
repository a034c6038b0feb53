"""
Training data: cached dialog streams, and crops of them that train the way the node runs.

The node streams one model state through a whole conversation.  A crop is therefore a piece
of a continuous dialog stream: ``burn_in_frames`` frames that only warm the network's state
(the loss ignores them), then ``crop_frames`` frames where the loss sees the listening
windows and the valid targets.  A crop that starts at the dialog's first frame needs no
burn-in (the node, too, starts that dialog from the zero state), so there the loss sees every
frame.  Crops are anchored on a loss frame drawn uniformly over all listening-window frames of
the data, by a generator seeded with (seed, epoch, index), so a crop does not depend on which
process of a distributed run draws it; an epoch has ``ceil(window frames / crop_frames)``
crops.  Features are the input rows the deployed model computes
(:class:`~listener_head_ros.models.frame_inputs.FrameInputs`): the cached acoustic features,
the speech encoder's rows (computed once into the cache, :mod:`~listener_head_ros.data.
speech_cache`) and the text features of the cached transcripts, each result seen from the
frame its recogniser published it on.

A crop also carries its training noise: ``D + 1`` standard normal values per frame (``D``
target columns), drawn from the crop's own generator, for objectives that need randomness
(flow matching draws its starting points and times from it), so that, like the crop itself,
the noise does not depend on which process of a distributed run draws the crop.
"""

from __future__ import annotations

from dataclasses import dataclass
import math
from typing import Iterable, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch.utils.data import Dataset

from listener_head_ros.data.feature_cache import CachedDialogInfo, FeatureCache
from listener_head_ros.data.speech_cache import ensure_speech_rows, load_speech_rows
from listener_head_ros.data.transcripts import event_from_dict
from listener_head_ros.models.base import SideInputs
from listener_head_ros.models.frame_features import feature_matrix
from listener_head_ros.models.frame_inputs import ACOUSTIC, FrameInputs, SPEECH
from listener_head_ros.streams import get_stream


@dataclass
class DialogData:
    """Feature matrices, targets and masks of a set of dialogs, in cache order."""

    infos: List[CachedDialogInfo]
    features: List[np.ndarray]  # (T, F) float32 each
    targets: List[np.ndarray]  # (T, D) float32: the target streams' columns, 0 where invalid
    valid: List[np.ndarray]  # (T, D) bool: per column validity
    windows: List[np.ndarray]  # (T,) bool: listening windows
    streams: Tuple[str, ...]  # the target streams, in column order

    def __len__(self) -> int:
        return len(self.infos)

    @property
    def n_frames(self) -> int:
        """Return the total number of frames."""
        return sum(len(f) for f in self.features)

    def target_statistics(self, min_std: float = 1e-3) -> Tuple[np.ndarray, np.ndarray]:
        """Return each target column's mean and standard deviation (>= min_std), valid frames."""
        targets = np.concatenate(self.targets).astype(np.float64)
        valid = np.concatenate(self.valid)
        counts = valid.sum(0)
        if not counts.all():
            empty = np.flatnonzero(counts == 0).tolist()
            raise ValueError(f'target columns {empty} have no valid frame to train on')
        mean = np.where(valid, targets, 0.0).sum(0) / counts
        variance = np.where(valid, (targets - mean) ** 2, 0.0).sum(0) / counts
        return (mean.astype(np.float32),
                np.maximum(np.sqrt(variance), min_std).astype(np.float32))

    def loss_frames(self, index: int) -> np.ndarray:
        """Return the frames of dialog ``index`` that a loss can see: window and a target."""
        return np.flatnonzero(self.windows[index] & self.valid[index].any(axis=1))


def load_dialogs(cache: FeatureCache, groups: Iterable[str], streams: Sequence[str],
                 inputs: Optional[FrameInputs] = None) -> DialogData:
    """
    Load every dialog of ``groups`` from ``cache`` into memory, with ``streams`` as targets.

    ``inputs`` chooses the input rows (the acoustic rows alone by default); speech-encoder
    rows are computed into the cache first if they are not there yet.
    """
    missing = sorted(set(streams) - set(cache.targets))
    if missing:
        raise ValueError(f'the cache {cache.cache_dir} has no target streams {missing} (it '
                         f'holds {", ".join(cache.targets)})')
    view = cache.select(groups)
    speech = None if inputs is None or inputs.speech is None else ensure_speech_rows(
        cache, inputs)
    data = DialogData([], [], [], [], [], tuple(streams))
    for i in range(len(view)):
        dialog = view.load(i)
        data.infos.append(dialog.info)
        acoustic = feature_matrix(dialog.features).astype(np.float32)
        if inputs is None:
            data.features.append(acoustic)
        else:
            blocks = {ACOUSTIC: acoustic}
            if speech is not None:
                blocks[SPEECH] = load_speech_rows(speech, dialog.info, inputs.speech.dim)
            data.features.append(inputs.matrix(
                None, dialog_contexts(dialog.info, cache.frame_rate), blocks))
        data.targets.append(np.concatenate([dialog.targets[s] for s in streams], axis=1))
        data.valid.append(np.concatenate([np.repeat(dialog.valid[s][:, None],
                                                    get_stream(s).dim, axis=1)
                                          for s in streams], axis=1))
        data.windows.append(np.asarray(dialog.window, dtype=bool))
    return data


def dialog_contexts(info: CachedDialogInfo, frame_rate: float) -> list:
    """Return the step contexts of a cached dialog: its transcripts, at their frames."""
    events = [event_from_dict(e) for e in getattr(info, 'transcripts', [])]
    return SideInputs(events).contexts(info.n_frames, 1.0 / frame_rate)


class DialogCrops(Dataset):
    """Crops of dialog streams: (features, targets, per-column loss mask, noise), zero-padded."""

    def __init__(self, data: DialogData, crop_frames: int, burn_in_frames: int = 0,
                 seed: int = 0) -> None:
        self.data, self.seed = data, int(seed)
        self.crop_frames, self.burn_in_frames = int(crop_frames), int(burn_in_frames)
        self._anchors = [data.loss_frames(i) for i in range(len(data))]
        self._ends = np.cumsum([a.size for a in self._anchors])
        if not len(data) or not self._ends[-1]:
            raise ValueError('no listening-window frames with a target to train on')
        self.epoch = 0

    @property
    def length(self) -> int:
        """Return the frames of one crop: burn-in and loss part."""
        return self.burn_in_frames + self.crop_frames

    def set_epoch(self, epoch: int) -> None:
        """Draw different crops in each epoch."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return max(1, math.ceil(int(self._ends[-1]) / self.crop_frames))

    def __getitem__(self, index: int
                    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng((self.seed, self.epoch, index))
        pick = int(rng.integers(int(self._ends[-1])))
        dialog = int(np.searchsorted(self._ends, pick, side='right'))
        anchor = int(self._anchors[dialog][pick - (self._ends[dialog - 1] if dialog else 0)])
        features, targets = self.data.features[dialog], self.data.targets[dialog]
        n, length = len(features), self.length
        start = anchor - self.burn_in_frames - int(rng.integers(self.crop_frames))
        start = min(max(start, 0), max(n - length, 0))
        stop = min(start + length, n)
        first_loss = 0 if start == 0 else self.burn_in_frames  # the true stream start
        x = np.zeros((length, features.shape[1]), dtype=np.float32)
        y = np.zeros((length, targets.shape[1]), dtype=np.float32)
        mask = np.zeros((length, targets.shape[1]), dtype=bool)
        x[:stop - start], y[:stop - start] = features[start:stop], targets[start:stop]
        mask[:stop - start] = (self.data.valid[dialog][start:stop]
                               & self.data.windows[dialog][start:stop, None])
        mask[:first_loss] = False
        noise = rng.standard_normal((length, targets.shape[1] + 1), dtype=np.float32)
        return (torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(mask),
                torch.from_numpy(noise))
