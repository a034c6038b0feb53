"""
Listener checkpoints: a directory with ``config.json`` and ``model.safetensors``; never pickles.

``config.json`` holds ``{"model_type": ..., "role": ..., "model_config": {...}}`` (``role``:
:mod:`listener_head_ros.roles`, listening when absent) and the weights live in a
safetensors file, the only format loaded. A model type is the embedded ``prosodic`` model
(which needs no checkpoint, but can be saved as one to pin its settings) or an architecture of
the registry (:mod:`listener_head_ros.models.registry`), built by
:func:`listener_head_ros.models.learned.load_learned_model`; so the node, training and
evaluation all load models the same way.

Whatever ``config.json`` holds, loading raises only :class:`CheckpointError`: the file may have
at most :data:`MAX_CONFIG_BYTES` and nest at most :data:`MAX_CONFIG_DEPTH` levels, and every
section is read strictly, with its types and ranges (:func:`read_settings`).
"""

from __future__ import annotations

from dataclasses import asdict
import json
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Tuple

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file

from listener_head_ros.models.base import StreamingListenerModel
from listener_head_ros.models.prosodic import ProsodicListener, ProsodicListenerConfig
from listener_head_ros.models.registry import network_names
from listener_head_ros.roles import check_role, LISTENING
from listener_head_ros.schema import closest, from_flat, setting_specs, SettingsError, SettingSpec

CONFIG_NAME = 'config.json'
EMBEDDED_MODEL = ProsodicListener.name  # the model that needs no checkpoint
WEIGHTS_NAME = 'model.safetensors'
MAX_CONFIG_BYTES = 1 << 20  # a real config.json is about 1.5 kB
MAX_CONFIG_DEPTH = 8  # a real one nests 3: the file, model_config, a section or list


class CheckpointError(RuntimeError):
    """A checkpoint is missing, unreadable, of an unknown type, or inconsistent."""


def _depth(value: object) -> int:
    """Return how deeply JSON objects and arrays nest in ``value`` (0 for a scalar)."""
    depth, level = 0, [value]
    while True:
        containers = [v for v in level if isinstance(v, (dict, list))]
        if not containers:
            return depth
        depth += 1
        level = [item for c in containers for item in (c.values() if isinstance(c, dict) else c)]


def registered_model_types() -> Tuple[str, ...]:
    """Return the model types that checkpoints may name."""
    return (EMBEDDED_MODEL,) + network_names()


def save_checkpoint(directory: Path | str, model_type: str, model_config: Mapping,
                    tensors: Optional[Mapping[str, np.ndarray]] = None,
                    role: str = LISTENING) -> Path:
    """Write ``config.json`` and ``model.safetensors`` into ``directory``; return it."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    config = {'model_type': model_type, 'role': check_role(role),
              'model_config': dict(model_config)}
    (directory / CONFIG_NAME).write_text(json.dumps(config, indent=2, sort_keys=True) + '\n')
    save_file({k: np.ascontiguousarray(v) for k, v in (tensors or {}).items()},
              str(directory / WEIGHTS_NAME), metadata={'model_type': model_type})
    return directory


def read_checkpoint(directory: Path | str) -> Tuple[str, dict, Dict[str, np.ndarray]]:
    """Return (model_type, model_config, tensors) of a checkpoint; raise CheckpointError."""
    directory = Path(directory)
    config = _read_config(directory)
    weights_path = directory / WEIGHTS_NAME
    try:
        tensors = load_file(str(weights_path))
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointError(
            f'{weights_path} is not a readable safetensors file ({error}); checkpoints are '
            'never unpickled, so .pt/.pth/.ckpt files must be converted to safetensors'
        ) from error
    return config['model_type'], config.get('model_config', {}), tensors


def checkpoint_role(directory: Path | str) -> str:
    """Return the role a checkpoint was trained for (listening if it says none)."""
    path = Path(directory) / CONFIG_NAME
    try:
        return check_role(_read_config(Path(directory)).get('role', LISTENING), f'{path}: role')
    except ValueError as error:
        raise CheckpointError(str(error)) from None


def _read_config(directory: Path) -> dict:
    """Return the checked ``config.json`` of a checkpoint with both files; raise otherwise."""
    if not directory.is_dir():
        raise CheckpointError(f'checkpoint directory {directory} does not exist')
    config_path, weights_path = directory / CONFIG_NAME, directory / WEIGHTS_NAME
    for path in (config_path, weights_path):
        if not path.is_file():
            raise CheckpointError(f'checkpoint {directory} has no {path.name}')
    size = config_path.stat().st_size
    if size > MAX_CONFIG_BYTES:
        raise CheckpointError(f'{config_path} is {size} bytes, more than a checkpoint config '
                              f'may have ({MAX_CONFIG_BYTES})')
    try:
        config = json.loads(config_path.read_text())
    except (ValueError, RecursionError) as error:  # also over-long integers, deep nesting
        raise CheckpointError(f'{config_path} is not valid JSON: {error}') from error
    if _depth(config) > MAX_CONFIG_DEPTH:
        raise CheckpointError(f'{config_path} nests deeper than {MAX_CONFIG_DEPTH} levels')
    if not isinstance(config, dict) or not isinstance(config.get('model_type'), str):
        raise CheckpointError(f'{config_path} must be an object with a "model_type" string')
    if not isinstance(config.get('model_config', {}), dict):
        raise CheckpointError(f'{config_path}: "model_config" must be an object')
    return config


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


def read_settings(values: object, kind: type, section: str) -> Any:
    """
    Return dataclass ``kind`` read strictly from a config's JSON object ``values``.

    As :func:`~listener_head_ros.schema.from_flat` reads the node's parameters (names, types,
    finite floats, ranges, the dataclass's own checks), except that JSON's integers are also
    numbers for float settings. Raises ValueError naming ``section``.
    """
    if not isinstance(values, Mapping):
        raise ValueError(f'"{section}" must be an object')
    specs = {spec.name: spec for spec in setting_specs(kind)}
    unknown = sorted(set(values) - set(specs))
    if unknown:
        raise ValueError(f'unknown {section} settings {unknown}')
    try:
        return from_flat(kind, {name: _json_number(specs[name], value)
                                for name, value in values.items()}, section)
    except SettingsError as error:
        raise SettingsError(f'{section} settings: {error}') from None


def _json_number(spec: SettingSpec, value: Any) -> Any:
    """Return a JSON integer as a float for a float setting; any other value as it is."""
    if spec.kind is not float or type(value) is not int:
        return value
    try:
        return float(value)
    except OverflowError:
        raise SettingsError(f'{spec.name} is too large for a float') from None


def prosodic_config(config: Mapping) -> ProsodicListenerConfig:
    """Return the prosodic settings of a checkpoint config; raise ValueError if malformed."""
    return read_settings(config, ProsodicListenerConfig, 'prosodic')


def save_prosodic_checkpoint(directory: Path | str, config: ProsodicListenerConfig) -> Path:
    """Save the embedded model's settings as a checkpoint."""
    return save_checkpoint(directory, EMBEDDED_MODEL, asdict(config))
