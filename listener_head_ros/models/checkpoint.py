"""
Listener checkpoints: a directory with ``config.json`` and ``model.safetensors``; never pickles.

``config.json`` holds ``{"model_type": ..., "model_config": {...}}`` and the weights live in a
safetensors file, the only format loaded. A model type is the embedded ``prosodic`` model
(which needs no checkpoint, but can be saved as one to pin its settings) or an architecture of
the registry (:mod:`listener_head_ros.models.registry`), built by
:func:`listener_head_ros.models.learned.load_learned_model`; so the node, training and
evaluation all load models the same way.
"""

from __future__ import annotations

from dataclasses import asdict, fields
import json
from pathlib import Path
from typing import Dict, Mapping, Optional, Tuple

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file

from listener_head_ros.models.base import StreamingListenerModel
from listener_head_ros.models.prosodic import ProsodicListener, ProsodicListenerConfig
from listener_head_ros.models.registry import network_names
from listener_head_ros.schema import closest

CONFIG_NAME = 'config.json'
EMBEDDED_MODEL = ProsodicListener.name  # the model that needs no checkpoint
WEIGHTS_NAME = 'model.safetensors'


class CheckpointError(RuntimeError):
    """A checkpoint is missing, unreadable, of an unknown type, or inconsistent."""


def registered_model_types() -> Tuple[str, ...]:
    """Return the model types that checkpoints may name."""
    return (EMBEDDED_MODEL,) + network_names()


def save_checkpoint(directory: Path | str, model_type: str, model_config: Mapping,
                    tensors: Optional[Mapping[str, np.ndarray]] = None) -> Path:
    """Write ``config.json`` and ``model.safetensors`` into ``directory``; return it."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    config = {'model_type': model_type, 'model_config': dict(model_config)}
    (directory / CONFIG_NAME).write_text(json.dumps(config, indent=2, sort_keys=True) + '\n')
    save_file({k: np.ascontiguousarray(v) for k, v in (tensors or {}).items()},
              str(directory / WEIGHTS_NAME), metadata={'model_type': model_type})
    return directory


def read_checkpoint(directory: Path | str) -> Tuple[str, dict, Dict[str, np.ndarray]]:
    """Return (model_type, model_config, tensors) of a checkpoint; raise CheckpointError."""
    directory = Path(directory)
    if not directory.is_dir():
        raise CheckpointError(f'checkpoint directory {directory} does not exist')
    config_path, weights_path = directory / CONFIG_NAME, directory / WEIGHTS_NAME
    for path in (config_path, weights_path):
        if not path.is_file():
            raise CheckpointError(f'checkpoint {directory} has no {path.name}')
    try:
        config = json.loads(config_path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(f'{config_path} is not valid JSON: {error}') from error
    if not isinstance(config, dict) or not isinstance(config.get('model_type'), str):
        raise CheckpointError(f'{config_path} must be an object with a "model_type" string')
    model_config = config.get('model_config', {})
    if not isinstance(model_config, dict):
        raise CheckpointError(f'{config_path}: "model_config" must be an object')
    try:
        tensors = load_file(str(weights_path))
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointError(
            f'{weights_path} is not a readable safetensors file ({error}); checkpoints are '
            'never unpickled, so .pt/.pth/.ckpt files must be converted to safetensors'
        ) from error
    return config['model_type'], model_config, tensors


def load_checkpoint(directory: Path | str, frame_rate: float = 30.0,
                    device: str = 'cpu') -> StreamingListenerModel:
    """Build the streaming model stored in ``directory``; raise CheckpointError."""
    model_type, model_config, tensors = read_checkpoint(directory)
    if model_type != EMBEDDED_MODEL and model_type not in network_names():
        raise CheckpointError(f'checkpoint {directory} has unknown model_type {model_type!r}'
                              f'{closest(model_type, registered_model_types())}; known: '
                              f'{", ".join(registered_model_types())}')
    try:
        if model_type == EMBEDDED_MODEL:
            return ProsodicListener(prosodic_config(model_config), frame_rate=frame_rate)
        from listener_head_ros.models.learned import load_learned_model
        return load_learned_model(model_config, tensors, frame_rate, device)
    except (TypeError, ValueError, KeyError) as error:
        raise CheckpointError(f'checkpoint {directory} does not fit a {model_type!r} model: '
                              f'{error}') from error


def load_listener_model(model: str, frame_rate: float = 30.0, device: str = 'cpu',
                        prosodic: Optional[ProsodicListenerConfig] = None
                        ) -> StreamingListenerModel:
    """Return the embedded model for ``'prosodic'`` (with ``prosodic``), else a checkpoint."""
    if model == EMBEDDED_MODEL:
        return ProsodicListener(prosodic, frame_rate=frame_rate)
    return load_checkpoint(model, frame_rate=frame_rate, device=device)


def prosodic_config(config: Mapping) -> ProsodicListenerConfig:
    """Return the prosodic settings of a checkpoint config; raise ValueError on unknown keys."""
    known = {f.name for f in fields(ProsodicListenerConfig)}
    unknown = sorted(set(config) - known)
    if unknown:
        raise ValueError(f'unknown prosodic settings {unknown}')
    settings = {k: tuple(v) if isinstance(v, list) else v for k, v in config.items()}
    return ProsodicListenerConfig(**settings)


def save_prosodic_checkpoint(directory: Path | str, config: ProsodicListenerConfig) -> Path:
    """Save the embedded model's settings as a checkpoint."""
    return save_checkpoint(directory, EMBEDDED_MODEL, asdict(config))
