"""Training configuration: one dataclass, loaded from YAML and validated with clear errors."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Dict, Mapping, Tuple

import yaml

from listener_head_ros.models.device import DEVICES

MODEL_TYPES = ('causal_gru_mdn', 'causal_active_listener')


class ConfigError(ValueError):
    """A training configuration is malformed: unknown keys, wrong types or bad values."""


@dataclass(frozen=True)
class TrainConfig:
    """Everything one leave-one-session-out training run depends on."""

    cache_dir: str
    out_dir: str
    model_type: str = 'causal_gru_mdn'
    model: Dict[str, Any] = field(default_factory=dict)  # the model's config dataclass fields
    sessions: Tuple[int, ...] = (1, 2, 3, 4, 5)  # each one is a test fold
    folds: Tuple[int, ...] = ()  # subset of sessions to run as test folds; () = all
    final_model: bool = False  # after the folds, train one more model on all sessions
    steps: int = 2000
    batch_size: int = 32
    crop_frames: int = 300  # training crops of 10 s at 30 frames/s
    learning_rate: float = 2e-3
    weight_decay: float = 0.01
    warmup_steps: int = 100
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    mixed_precision: bool = True  # bf16 autocast on CUDA only
    device: str = 'auto'
    seed: int = 0
    log_every: int = 50
    checkpoint_every: int = 500

    def __post_init__(self) -> None:
        if self.model_type not in MODEL_TYPES:
            raise ConfigError(f'model_type must be one of {", ".join(MODEL_TYPES)}, '
                              f'not {self.model_type!r}')
        positive = ('steps', 'batch_size', 'crop_frames', 'learning_rate', 'log_every',
                    'checkpoint_every')
        for name in positive:
            if not getattr(self, name) > 0:
                raise ConfigError(f'{name} must be positive, not {getattr(self, name)!r}')
        if self.device not in DEVICES and not str(self.device).startswith('cuda:'):
            raise ConfigError(f'device must be one of {", ".join(DEVICES)} (or cuda:N), '
                              f'not {self.device!r}')
        if not 0.0 <= self.ema_decay < 1.0:
            raise ConfigError('ema_decay must lie in [0, 1)')
        if len(set(self.sessions)) < 2:
            raise ConfigError('leave-one-session-out needs at least two sessions')
        unknown = set(self.folds) - set(self.sessions)
        if unknown:
            raise ConfigError(f'folds {sorted(unknown)} are not among sessions {self.sessions}')

    @property
    def test_folds(self) -> Tuple[int, ...]:
        """Return the sessions that are held out in turn."""
        return tuple(self.folds) or tuple(self.sessions)

    def to_dict(self) -> Dict[str, Any]:
        """Return a JSON/YAML-ready dict."""
        data = asdict(self)
        data['sessions'], data['folds'] = list(self.sessions), list(self.folds)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> 'TrainConfig':
        """Build a config from a mapping; unknown keys and wrong types raise ConfigError."""
        if not isinstance(data, Mapping):
            raise ConfigError('a training config must be a mapping of settings')
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ConfigError(f'unknown config keys {unknown}; known: {sorted(known)}')
        missing = [n for n in ('cache_dir', 'out_dir') if n not in data]
        if missing:
            raise ConfigError(f'missing config keys {missing}')
        values = dict(data)
        for name in ('sessions', 'folds'):
            if name in values:
                values[name] = _int_tuple(name, values[name])
        for name, value in values.items():
            default = known[name].default
            if known[name].type == 'str' and not isinstance(value, str):
                raise ConfigError(f'{name} must be a string, not {value!r}')
            if isinstance(default, bool) and not isinstance(value, bool):
                raise ConfigError(f'{name} must be true or false, not {value!r}')
            if isinstance(default, (int, float)) and not isinstance(default, bool):
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise ConfigError(f'{name} must be a number, not {value!r}')
                if isinstance(default, int) and not float(value).is_integer():
                    raise ConfigError(f'{name} must be an integer, not {value!r}')
                values[name] = type(default)(value)
        if not isinstance(values.get('model', {}), Mapping):
            raise ConfigError('model must be a mapping of model settings')
        return cls(**values)

    @classmethod
    def from_yaml(cls, path: Path | str, **overrides: Any) -> 'TrainConfig':
        """Load a YAML config file, then apply ``overrides``."""
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as error:
            raise ConfigError(f'cannot read training config {path}: {error}') from error
        if not isinstance(data, dict):
            raise ConfigError(f'{path} must hold a mapping of settings')
        data.update({k: v for k, v in overrides.items() if v is not None})
        return cls.from_dict(data)


def _int_tuple(name: str, value: Any) -> Tuple[int, ...]:
    if not isinstance(value, (list, tuple)) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise ConfigError(f'{name} must be a list of session numbers, not {value!r}')
    return tuple(value)
