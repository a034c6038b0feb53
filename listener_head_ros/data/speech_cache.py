"""
Speech-encoder states of a feature cache, computed once, in the cache's own shard format.

A pretrained speech encoder costs far more than the rest of a training step, so its rows
(:class:`~listener_head_ros.models.speech_encoder.WindowedSpeechEncoder`, exactly what the node
computes) are computed once per encoder setting from the audio the cache holds and stored
beside it::

    <cache>/speech-<key>/index.json              the speech settings, width, rows per shard
    <cache>/speech-<key>/shard-00000.safetensors speech (N, width) float32, the rows of the
                                                 cache's shard of the same name

``<key>`` is a hash of the settings that change the rows (encoder, layers, window, every,
normalisation), so several encoders live side by side and a changed setting is computed
anew. Like the cache's, the index is written last (atomically): an interrupted run leaves no
valid index and is redone.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Dict, List

import numpy as np
from safetensors import safe_open
from safetensors.numpy import save_file
from tqdm import tqdm

from listener_head_ros.data.feature_cache import CacheError, FeatureCache, FORMAT_VERSION
from listener_head_ros.models.frame_inputs import FrameInputs

SPEECH_TENSOR = 'speech'
FORMAT_NAME = 'listener_head_ros.speech_cache'


def speech_settings(inputs: FrameInputs) -> Dict[str, Any]:
    """Return the JSON-ready settings that determine the speech rows of ``inputs``."""
    config = inputs.config
    return {'encoder': config.speech_encoder, 'layers': list(config.layers),
            'window': config.speech_window, 'every': config.speech_every,
            'normalize': config.speech_normalize, 'width': inputs.speech.dim}


def speech_dir(cache: FeatureCache, inputs: FrameInputs) -> Path:
    """Return the folder of the speech rows of ``inputs`` in ``cache``."""
    text = json.dumps({k: v for k, v in speech_settings(inputs).items() if k != 'width'},
                      sort_keys=True)
    return cache.cache_dir / f'speech-{hashlib.sha256(text.encode()).hexdigest()[:12]}'


def _index(cache: FeatureCache, inputs: FrameInputs) -> Dict[str, Any]:
    return {'format': FORMAT_NAME, 'version': FORMAT_VERSION,
            'settings': speech_settings(inputs), 'cache_source': cache.source}


def ensure_speech_rows(cache: FeatureCache, inputs: FrameInputs, progress: bool = True
                       ) -> Path:
    """
    Compute the speech rows of every dialog of ``cache`` unless they are there already.

    Reads the whole cache (not a view of some groups), so every fold uses the same rows.
    Return the folder that holds them.
    """
    folder = speech_dir(cache, inputs)
    wanted = json.loads(json.dumps(_index(cache, inputs)))
    try:
        if json.loads((folder / 'index.json').read_text()) == wanted:
            return folder
    except (OSError, ValueError):
        pass
    folder.mkdir(parents=True, exist_ok=True)
    (folder / 'index.json').unlink(missing_ok=True)
    full = FeatureCache(cache.cache_dir)
    shards: Dict[str, List[np.ndarray]] = {}
    for i in tqdm(range(len(full)), desc='speech encoder', unit='dialog', disable=not progress):
        info = full.dialogs[i]
        rows = inputs.speech.encode(full.load_audio(i), info.n_frames)
        parts = shards.setdefault(info.shard, [])
        if sum(len(p) for p in parts) != info.offset:
            raise CacheError(f'{cache.cache_dir}: dialog {info.dialog_id} is not in shard '
                             'order; prepare the cache again')
        parts.append(rows)
    for shard, parts in shards.items():
        save_file({SPEECH_TENSOR: np.ascontiguousarray(np.concatenate(parts))},
                  str(folder / shard), metadata={'format': FORMAT_NAME})
    tmp = folder / 'index.json.tmp'
    tmp.write_text(json.dumps(wanted, indent=1))
    os.replace(tmp, folder / 'index.json')
    return folder


def load_speech_rows(folder: Path, info: Any, width: int) -> np.ndarray:
    """Return the ``(n_frames, width)`` speech rows of one cached dialog from ``folder``."""
    path = Path(folder) / info.shard
    try:
        with safe_open(str(path), framework='numpy') as f:
            rows = f.get_slice(SPEECH_TENSOR)[info.offset:info.offset + info.n_frames]
    except Exception as exc:  # safetensors raises its own error types
        raise CacheError(f'cannot read {path}: {exc}; delete {folder} to compute it '
                         'again') from exc
    if rows.shape != (info.n_frames, width):
        raise CacheError(f'{path}: speech rows of {info.dialog_id} have shape {rows.shape}, '
                         f'not ({info.n_frames}, {width}); delete {folder} to compute it again')
    return rows
