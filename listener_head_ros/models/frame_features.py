"""
The per-frame input of the learned listener networks, assembled from streaming features.

One row per model frame, ``n_mels + 4`` columns (:data:`FEATURE_DIM` = 68 for the default 64
mel bands):

==========================  =====================================================================
columns                     content
==========================  =====================================================================
``0 .. n_mels-1``           log-mel power (natural log), as :mod:`listener_head_ros.features`
``n_mels``                  ``energy_db / 100``: RMS level, -1 (floor, -100 dBFS) .. 0 (full scale)
``n_mels + 1``              ``log2(f0 / 100 Hz)`` when voiced (``f0 > 0``), else 0
``n_mels + 2``              voicing confidence, 0..1
``n_mels + 3``              voiced flag: 1 when ``f0 > 0``, else 0
==========================  =====================================================================

The rows are raw: the networks standardise them with per-column mean and standard deviation
buffers (:class:`listener_head_ros.models.networks.FeatureNorm`) that training fills with
:func:`feature_statistics` and that the checkpoint stores with the weights.
"""

from __future__ import annotations

import math
from typing import Iterable, Tuple

import numpy as np

from listener_head_ros.features import FeatureBatch, FeatureConfig, FeatureFrame

PROSODY_DIM = 4
FEATURE_DIM = FeatureConfig().n_mels + PROSODY_DIM
_F0_REFERENCE_HZ = 100.0


def feature_dim(n_mels: int = FeatureConfig().n_mels) -> int:
    """Return the width of a feature row for ``n_mels`` mel bands."""
    return int(n_mels) + PROSODY_DIM


def _assemble(log_mel: np.ndarray, energy_db: np.ndarray, f0_hz: np.ndarray,
              voicing: np.ndarray) -> np.ndarray:
    """Stack ``(T, n_mels)`` log-mel and ``(T,)`` prosody arrays into ``(T, n_mels + 4)``."""
    f0 = np.asarray(f0_hz, dtype=np.float64)
    voiced = np.isfinite(f0) & (f0 > 0.0)
    log_f0 = np.log2(np.where(voiced, f0, _F0_REFERENCE_HZ) / _F0_REFERENCE_HZ)
    prosody = np.stack(
        (np.asarray(energy_db, dtype=np.float64) / 100.0, log_f0,
         np.asarray(voicing, dtype=np.float64), voiced.astype(np.float64)), axis=1)
    matrix = np.concatenate((np.asarray(log_mel, dtype=np.float64), prosody), axis=1)
    return np.nan_to_num(matrix, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)


def feature_matrix(batch: FeatureBatch) -> np.ndarray:
    """Return the ``(T, n_mels + 4)`` float32 network input of a :class:`FeatureBatch`."""
    return _assemble(batch.log_mel, batch.energy_db, batch.f0_hz, batch.voicing)


def feature_vector(frame: FeatureFrame) -> np.ndarray:
    """
    Return the ``(n_mels + 4,)`` float32 network input of one :class:`FeatureFrame`.

    The same numbers as :func:`feature_matrix` for that frame; the four prosody columns are
    computed on Python floats, which is several times cheaper than array code on one row.
    """
    log_mel = np.asarray(frame.log_mel, dtype=np.float64)
    row = np.empty(log_mel.size + PROSODY_DIM, dtype=np.float32)
    row[:log_mel.size] = np.nan_to_num(log_mel, nan=0.0, posinf=0.0, neginf=0.0)
    f0 = float(frame.f0_hz)
    voiced = math.isfinite(f0) and f0 > 0.0
    prosody = (float(frame.energy_db) / 100.0,
               math.log2(f0 / _F0_REFERENCE_HZ) if voiced else 0.0,
               float(frame.voicing), 1.0 if voiced else 0.0)
    row[log_mel.size:] = [v if math.isfinite(v) else 0.0 for v in prosody]
    return row


def feature_statistics(matrices: Iterable[np.ndarray],
                       min_std: float = 1e-3) -> Tuple[np.ndarray, np.ndarray]:
    """
    Return per-column (mean, std) over the rows of all ``matrices``, as float32.

    Accumulates in float64, so it can stream over a whole corpus; ``std`` is floored at
    ``min_std`` so that a constant column (such as a flag that never fires) stays finite.
    """
    count, total, total_sq = 0, None, None
    for matrix in matrices:
        rows = np.asarray(matrix, dtype=np.float64)
        if rows.ndim != 2:
            raise ValueError(f'feature matrices must be 2-D, got shape {rows.shape}')
        if total is None:
            total, total_sq = np.zeros(rows.shape[1]), np.zeros(rows.shape[1])
        count += rows.shape[0]
        total += rows.sum(axis=0)
        total_sq += (rows * rows).sum(axis=0)
    if not count:
        raise ValueError('feature_statistics needs at least one feature row')
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean * mean, 0.0))
    return mean.astype(np.float32), np.maximum(std, min_std).astype(np.float32)
