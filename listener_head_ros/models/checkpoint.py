"""
Listener checkpoints: a directory with ``config.json`` and ``model.safetensors``; never pickles.

``config.json`` holds ``{"model_type": ..., "model_config": {...}}`` and the weights live in a
safetensors file, the only format loaded. A model type registers a factory that builds the
model from its config and tensors, so the node, training and evaluation all load models the
same way. The embedded ``prosodic`` model needs no checkpoint, but can be saved as one to pin
its settings.
"""

from __future__ import annotations

from dataclasses import asdict, fields
import importlib
import json
from pathlib import Path
from typing import Callable, Dict, Mapping, Optional, Tuple

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file

from listener_head_ros.models.base import StreamingListenerModel
from listener_head_ros.models.prosodic import ProsodicListener, ProsodicListenerConfig

CONFIG_NAME = 'config.json'
WEIGHTS_NAME = 'model.safetensors'
EMBEDDED_MODEL = 'prosodic'

ModelFactory = Callable[[Mapping, Dict[str, np.ndarray], float, str], StreamingListenerModel]
_FACTORIES: Dict[str, ModelFactory] = {}
# Modules that register model types when imported; imported on first need (they import torch).
_BUILTIN_MODEL_MODULES = ('listener_head_ros.models.learned',)


class CheckpointError(RuntimeError):
    """A checkpoint is missing, unreadable, of an unknown type, or inconsistent."""


def register_model_type(model_type: str, factory: ModelFactory) -> None:
    """Make ``model_type`` loadable: ``factory(config, tensors, frame_rate, device)``."""
    _FACTORIES[model_type] = factory


def _import_builtin_model_types() -> None:
    for module in _BUILTIN_MODEL_MODULES:
        importlib.import_module(module)


def registered_model_types() -> Tuple[str, ...]:
    """Return the model types that checkpoints may name."""
    _import_builtin_model_types()
    return tuple(sorted(_FACTORIES))


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
    if model_type not in _FACTORIES:
        _import_builtin_model_types()
    factory = _FACTORIES.get(model_type)
    if factory is None:
        raise CheckpointError(f'checkpoint {directory} has unknown model_type {model_type!r}; '
                              f'known: {", ".join(registered_model_types())}')
    try:
        return factory(model_config, tensors, frame_rate, device)
    except (TypeError, ValueError, KeyError) as error:
        raise CheckpointError(f'checkpoint {directory} does not fit a {model_type!r} model: '
                              f'{error}') from error


def load_listener_model(model: str, frame_rate: float = 30.0,
                        device: str = 'cpu') -> StreamingListenerModel:
    """Return the embedded model for ``'prosodic'``, else the checkpoint at path ``model``."""
    if model == EMBEDDED_MODEL:
        return ProsodicListener(frame_rate=frame_rate)
    return load_checkpoint(model, frame_rate=frame_rate, device=device)


def _prosodic_factory(config: Mapping, tensors: Dict[str, np.ndarray], frame_rate: float,
                      device: str) -> StreamingListenerModel:
    known = {f.name for f in fields(ProsodicListenerConfig)}
    unknown = sorted(set(config) - known)
    if unknown:
        raise ValueError(f'unknown prosodic settings {unknown}')
    settings = {k: tuple(v) if isinstance(v, list) else v for k, v in config.items()}
    return ProsodicListener(ProsodicListenerConfig(**settings), frame_rate=frame_rate)


def save_prosodic_checkpoint(directory: Path | str, config: ProsodicListenerConfig) -> Path:
    """Save the embedded model's settings as a checkpoint."""
    return save_checkpoint(directory, EMBEDDED_MODEL, asdict(config))


register_model_type(EMBEDDED_MODEL, _prosodic_factory)
