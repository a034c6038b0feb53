"""Training configuration: one dataclass, loaded from YAML and validated with clear errors."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Dict, Mapping, Tuple

import yaml

from listener_head_ros.models.device import DEVICES
from listener_head_ros.models.registry import network_names
from listener_head_ros.schema import closest
from listener_head_ros.streams import get_stream, HEAD

_GROUP_LISTS = ('groups', 'folds')


class ConfigError(ValueError):
    """A training configuration is malformed: unknown keys, wrong types or bad values."""


@dataclass(frozen=True)
class TrainConfig:
    """
    Everything one training run depends on (the split comes from the cache's source).

    Leave-one-group-out corpora (IEMOCAP: the sessions) train one fresh model per held-out
    group of ``groups`` (all of the cache's when empty), or only for those of ``folds``; a
    corpus with a fixed split trains once, on ``train``, scored on ``test``.  Each training
    crop is ``burn_in_frames`` frames that only warm the network's state, then
    ``crop_frames`` frames whose listening windows (and valid targets) the loss sees.
    """

    cache_dir: str
    out_dir: str
    model_type: str = 'causal_gru_mdn'
    model: Dict[str, Any] = field(default_factory=dict)  # the model's config dataclass fields
    targets: Tuple[str, ...] = (HEAD.name,)  # target streams, in output column order
    loss_weights: Dict[str, float] = field(default_factory=dict)  # stream -> weight (1.0)
    groups: Tuple[str, ...] = ()  # groups that take part; () = all of the cache
    folds: Tuple[str, ...] = ()  # held-out groups to run; () = every fold of the split
    final_model: bool = False  # after the folds, train one more model for deployment
    steps: int = 2000
    batch_size: int = 32
    crop_frames: int = 300  # frames of a crop the loss sees (10 s at 30 frames/s)
    burn_in_frames: int = 150  # loss-masked frames before them (5 s of state warm-up)
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
    streaming_eval: bool = True  # also score each fold through the node's streaming path
    listener_params: str = ''  # the node's parameter file for it; '' = config/listener.yaml

    def __post_init__(self) -> None:
        for name in _GROUP_LISTS:
            object.__setattr__(self, name, _group_tuple(name, getattr(self, name)))
        object.__setattr__(self, 'targets', tuple(self.targets))
        known = network_names()
        if self.model_type not in known:
            raise ConfigError(f'model_type must be one of {", ".join(known)}, not '
                              f'{self.model_type!r}{closest(self.model_type, known)}')
        if not self.targets or len(set(self.targets)) != len(self.targets):
            raise ConfigError(f'targets must name distinct streams, not {list(self.targets)}')
        for name in tuple(self.targets) + tuple(self.loss_weights):
            try:
                get_stream(name)
            except ValueError as error:
                raise ConfigError(f'targets: {error}') from None
        stray = sorted(set(self.loss_weights) - set(self.targets))
        if stray:
            raise ConfigError(f'loss_weights name streams that are not targets: {stray}')
        if any(not float(w) > 0.0 for w in self.loss_weights.values()):
            raise ConfigError('loss_weights must be positive')
        positive = ('steps', 'batch_size', 'crop_frames', 'learning_rate', 'log_every',
                    'checkpoint_every')
        for name in positive:
            if not getattr(self, name) > 0:
                raise ConfigError(f'{name} must be positive, not {getattr(self, name)!r}')
        if self.burn_in_frames < 0:
            raise ConfigError(f'burn_in_frames must be >= 0, not {self.burn_in_frames}')
        if self.device not in DEVICES and not str(self.device).startswith('cuda:'):
            raise ConfigError(f'device must be one of {", ".join(DEVICES)} (or cuda:N), '
                              f'not {self.device!r}')
        if not 0.0 <= self.ema_decay < 1.0:
            raise ConfigError('ema_decay must lie in [0, 1)')
        unknown = set(self.folds) - set(self.groups)
        if self.groups and unknown:
            raise ConfigError(f'folds {sorted(unknown)} are not among groups '
                              f'{list(self.groups)}')

    def weight(self, stream: str) -> float:
        """Return the loss weight of a target stream."""
        return float(self.loss_weights.get(stream, 1.0))

    def to_dict(self) -> Dict[str, Any]:
        """Return a JSON/YAML-ready dict."""
        data = asdict(self)
        for name in _GROUP_LISTS + ('targets',):
            data[name] = list(data[name])
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> 'TrainConfig':
        """Build a config from a mapping; unknown keys and wrong types raise ConfigError."""
        if not isinstance(data, Mapping):
            raise ConfigError('a training config must be a mapping of settings')
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ConfigError(f'unknown config keys {unknown}'
                              f'{closest(unknown[0], known)}; known: {sorted(known)}')
        missing = [n for n in ('cache_dir', 'out_dir') if n not in data]
        if missing:
            raise ConfigError(f'missing config keys {missing}')
        values = dict(data)
        if 'targets' in values:
            targets = values['targets']
            if not isinstance(targets, (list, tuple)) or not all(
                    isinstance(t, str) for t in targets):
                raise ConfigError(f'targets must be a list of stream names, not {targets!r}')
            values['targets'] = tuple(targets)
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
        for name in ('model', 'loss_weights'):
            if not isinstance(values.get(name, {}), Mapping):
                raise ConfigError(f'{name} must be a mapping')
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


def _group_tuple(name: str, value: Any) -> Tuple[str, ...]:
    """Return group names as strings: IEMOCAP sessions may be written as numbers."""
    if not isinstance(value, (list, tuple)) or not all(
            isinstance(v, (int, str)) and not isinstance(v, bool) for v in value):
        raise ConfigError(f'{name} must be a list of group names (e.g. session numbers), '
                          f'not {value!r}')
    return tuple(str(v) for v in value)
