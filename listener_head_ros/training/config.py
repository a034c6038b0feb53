"""
Training configuration: one dataclass, loaded from YAML and validated with clear errors.

The scalar settings (:class:`TrainSettings`) are declared once, each with its description and
range, by :func:`~listener_head_ros.schema.setting`, and read strictly by
:func:`~listener_head_ros.schema.from_flat`, the reader of the node's parameters, with one
allowance for YAML: a whole number is an integer setting's value (``steps: 1e3``) and any
number a float setting's (``grad_clip: 1``).  Exponents without a dot (``learning_rate:
2e-3``), which PyYAML's YAML 1.1 resolver reads as strings, are floats, as in YAML 1.2.  The
``model`` settings are read the same way against the architecture's config dataclass, and the
network they describe is counted on torch's meta device (nothing allocated) and refused above
:data:`MAX_PARAMETERS` parameters or :data:`MAX_PARAMETER_TENSORS` weight tensors.  Every
error is a :class:`ConfigError` that names the setting.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
import re
from typing import Any, Dict, List, Mapping, Tuple

import torch
from torch.nn.modules.module import register_module_parameter_registration_hook
import yaml

from listener_head_ros.models.device import DEVICES
from listener_head_ros.models.frame_inputs import InputConfig
from listener_head_ros.models.registry import build_network, network_names, network_type
from listener_head_ros.schema import (
    closest, from_flat, setting, setting_specs, SettingSpec, SettingsError, to_flat,
    unknown_names)
from listener_head_ros.streams import get_stream, HEAD, total_dim

MAX_PARAMETERS = 50_000_000
"""The largest network trained: the node steps it every frame on a CPU (0.74M take 1.2 ms)."""
MAX_PARAMETER_TENSORS = 10_000  # weight tensors (the default GRU-MDN has 12)

_MANY_STEPS = 10_000_000
_LONGEST_CROP = 18_000  # frames: 10 minutes at 30 frames/s, longer than a state needs
_HEAVIEST_LOSS_WEIGHT = 1e6
_GROUP_LISTS = ('groups', 'folds')
_ANY_ON_RERUN = ('cache_dir', 'out_dir', 'folds', 'final_model', 'device', 'log_every',
                 'checkpoint_every', 'streaming_eval', 'listener_params')
"""Settings a re-run may change: they do not change what the saved networks trained on."""


class ConfigError(SettingsError):
    """A training configuration is malformed: unknown keys, wrong types or values out of range."""


@dataclass(frozen=True)
class TrainSettings:
    """The scalar settings of a training run, each declared with its description and range."""

    model_type: str = setting('causal_gru_mdn', 'Network architecture (models/registry.py).')
    final_model: bool = setting(False, 'After the folds, train one more model on all groups, '
                                       'for deployment.')
    steps: int = setting(2000, 'Training steps of each network.', (1, _MANY_STEPS))
    batch_size: int = setting(32, 'Crops per step, over all processes.', (1, 4096))
    crop_frames: int = setting(300, 'Frames of a crop the loss sees (its listening windows).',
                               (1, _LONGEST_CROP))
    burn_in_frames: int = setting(150, 'Loss-masked frames before them, to warm the state.',
                                  (0, _LONGEST_CROP))
    learning_rate: float = setting(2e-3, 'Peak AdamW learning rate.', (1e-7, 1.0))
    weight_decay: float = setting(0.01, 'AdamW weight decay.', (0.0, 1.0))
    warmup_steps: int = setting(100, 'Steps of linear learning-rate warm-up.',
                                (0, _MANY_STEPS))
    grad_clip: float = setting(1.0, 'Largest gradient norm; larger ones are scaled down.',
                               (1e-6, 1e6))
    ema_decay: float = setting(0.999, 'Decay of the EMA of the weights (0: the last weights).',
                               (0.0, 0.99999))
    standardise_targets: bool = setting(
        False, 'Train on per-column standardised targets, the scaling saved in the checkpoint '
        '(for many columns in mixed units, as the 83 face columns); a network that '
        'standardises its own targets (causal_gru_flow) is unaffected.')
    mixed_precision: bool = setting(True, 'Use bf16 autocast, on CUDA only.')
    device: str = setting('auto', 'Where to train: auto, cpu, cuda or cuda:N.')
    seed: int = setting(0, 'Seed of the final model; each fold adds its place + 1.',
                        (0, 2 ** 31 - 1))
    log_every: int = setting(50, 'Steps between rows of log.csv.', (1, _MANY_STEPS))
    checkpoint_every: int = setting(500, 'Steps between saved training states.',
                                    (1, _MANY_STEPS))
    streaming_eval: bool = setting(True, "Also score each fold through the node's streaming "
                                         'path.')
    listener_params: str = setting('', "The node's parameter file for it ('': "
                                       'config/listener.yaml).')


@dataclass(frozen=True, kw_only=True)
class TrainConfig(TrainSettings):
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
    model: Dict[str, Any] = field(default_factory=dict)  # the model's config dataclass fields
    targets: Tuple[str, ...] = (HEAD.name,)  # target streams, in output column order
    loss_weights: Dict[str, float] = field(default_factory=dict)  # stream -> weight (1.0)
    inputs: Dict[str, Any] = field(default_factory=dict)  # InputConfig fields: what it hears
    groups: Tuple[str, ...] = ()  # groups that take part; () = all of the cache
    folds: Tuple[str, ...] = ()  # held-out groups to run; () = every fold of the split

    def __post_init__(self) -> None:
        scalars = {spec.name: _yaml_number(spec, getattr(self, spec.name))
                   for spec in setting_specs(TrainSettings)}
        for name, value in to_flat(_strict(TrainSettings, scalars, 'training config')).items():
            object.__setattr__(self, name, value)
        for name in ('cache_dir', 'out_dir'):
            if not isinstance(getattr(self, name), str):
                raise ConfigError(f'{name} must be a string, not {getattr(self, name)!r}')
        for name in _GROUP_LISTS:
            object.__setattr__(self, name, _group_tuple(name, getattr(self, name)))
        known = network_names()
        if self.model_type not in known:
            raise ConfigError(f'model_type must be one of {", ".join(known)}, not '
                              f'{self.model_type!r}{closest(self.model_type, known)}')
        if self.device not in DEVICES and not re.fullmatch(r'cuda:\d+', self.device):
            raise ConfigError(f'device must be one of {", ".join(DEVICES)} (or cuda:N), '
                              f'not {self.device!r}')
        self._check_streams()
        unknown = set(self.folds) - set(self.groups)
        if self.groups and unknown:
            raise ConfigError(f'folds {sorted(unknown)} are not among groups '
                              f'{list(self.groups)}')
        object.__setattr__(self, 'model', model_settings(self.model_type, self.model,
                                                         total_dim(self.targets)))
        self.input_config()

    def input_config(self) -> InputConfig:
        """Return the frame inputs the networks train on (``inputs``, read strictly)."""
        return _strict(InputConfig, self.inputs, 'inputs')

    def _check_streams(self) -> None:
        if not isinstance(self.targets, (list, tuple)) or not all(
                isinstance(t, str) for t in self.targets):
            raise ConfigError(f'targets must be a list of stream names, not {self.targets!r}')
        object.__setattr__(self, 'targets', tuple(self.targets))
        if not self.targets or len(set(self.targets)) != len(self.targets):
            raise ConfigError(f'targets must name distinct streams, not {list(self.targets)}')
        if not isinstance(self.loss_weights, Mapping):
            raise ConfigError(f'loss_weights must be a mapping, not {self.loss_weights!r}')
        for name in self.targets + tuple(self.loss_weights):
            try:
                get_stream(name)
            except ValueError as error:
                raise ConfigError(f'targets: {error}') from None
        stray = sorted(set(self.loss_weights) - set(self.targets))
        if stray:
            raise ConfigError(f'loss_weights name streams that are not targets: {stray}')
        for name, value in self.loss_weights.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
                    0.0 < value <= _HEAVIEST_LOSS_WEIGHT):
                raise ConfigError(f'loss_weights must be positive numbers up to '
                                  f'{_HEAVIEST_LOSS_WEIGHT:g}, not {name}: {value!r}')
        object.__setattr__(self, 'loss_weights', {
            name: float(value) for name, value in self.loss_weights.items()})

    def weight(self, stream: str) -> float:
        """Return the loss weight of a target stream."""
        return float(self.loss_weights.get(stream, 1.0))

    def training_changes(self, saved: 'TrainConfig') -> List[str]:
        """Return ``name: saved -> this`` for each setting that changes what a network learns."""
        mine, theirs = self.to_dict(), saved.to_dict()
        return [f'{name}: {theirs[name]!r} -> {mine[name]!r}' for name in mine
                if name not in _ANY_ON_RERUN and mine[name] != theirs[name]]

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
        known = [f.name for f in fields(cls)]
        unknown = unknown_names(sorted(set(data) - set(known)), known, 'config key')
        if unknown:
            raise ConfigError(unknown)
        missing = [n for n in ('cache_dir', 'out_dir') if n not in data]
        if missing:
            raise ConfigError(f'missing config keys {missing}')
        for name in ('model', 'loss_weights', 'inputs'):
            if not isinstance(data.get(name, {}), Mapping):
                raise ConfigError(f'{name} must be a mapping')
        return cls(**data)

    @classmethod
    def from_yaml(cls, path: Path | str, **overrides: Any) -> 'TrainConfig':
        """Load a YAML config file, then apply ``overrides``."""
        path = Path(path)
        try:
            data = load_yaml(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as error:
            raise ConfigError(f'cannot read training config {path}: {error}') from error
        if not isinstance(data, dict):
            raise ConfigError(f'{path} must hold a mapping of settings')
        data.update({k: v for k, v in overrides.items() if v is not None})
        return cls.from_dict(data)


def load_yaml(text: str) -> Any:
    """Parse YAML safely, reading ``2e-3`` and ``1E7`` as floats (YAML 1.2), not strings."""
    return yaml.load(text, Loader=_Yaml12FloatLoader)


def model_settings(model_type: str, model: Mapping[str, Any], output_dim: int
                   ) -> Dict[str, Any]:
    """Return ``model`` read strictly against ``model_type``'s config; refuse a huge network."""
    kind = network_type(model_type).config_type
    specs = {spec.name: spec for spec in setting_specs(kind)}
    values = {name: _yaml_number(specs[name], value) if name in specs else value
              for name, value in model.items()}
    built = {**values, 'output_dim': output_dim}
    _strict(kind, built, f'model ({model_type})')
    try:
        parameters, tensors = _network_size(model_type, built)
    except (RuntimeError, TypeError, ValueError, OverflowError) as error:
        raise ConfigError(f'model ({model_type}): cannot build it with {values}: '
                          f'{error}') from None
    if parameters > MAX_PARAMETERS or tensors > MAX_PARAMETER_TENSORS:
        raise ConfigError(f'model ({model_type}): {values} make a network of more than '
                          f'{MAX_PARAMETERS:,} parameters or {MAX_PARAMETER_TENSORS:,} weight '
                          'tensors, more than a listener may have')
    return values


class _TooLarge(Exception):
    """A network under construction has passed a size limit."""


def _network_size(model_type: str, settings: Mapping[str, Any]) -> Tuple[int, int]:
    """
    Return the parameters and weight tensors of a network built on torch's meta device.

    Nothing is allocated, and the build stops as soon as either count passes its limit: a
    GRU of 10^7 layers would take minutes to build, memory or not.
    """
    size = [0, 0]

    def count(module: torch.nn.Module, name: str, parameter: Any) -> None:
        if parameter is not None:
            size[0] += parameter.numel()
            size[1] += 1
            if size[0] > MAX_PARAMETERS or size[1] > MAX_PARAMETER_TENSORS:
                raise _TooLarge

    hook = register_module_parameter_registration_hook(count)
    try:
        with torch.device('meta'):
            build_network(model_type, settings)
    except _TooLarge:
        pass
    finally:
        hook.remove()
    return size[0], size[1]


def _strict(kind: type, values: Mapping[str, Any], source: str) -> Any:
    """Return ``from_flat(kind, values)``, its SettingsError as a ConfigError."""
    try:
        return from_flat(kind, values, source)
    except SettingsError as error:
        message = str(error)
        raise ConfigError(message if message.startswith(source) else f'{source}: {message}'
                          ) from None


def _yaml_number(spec: SettingSpec, value: Any) -> Any:
    """Return a YAML number as its setting's type: 1e3 steps are 1000, a grad_clip of 1 1.0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return value
    if spec.kind is float:
        try:
            return float(value)
        except OverflowError:
            raise ConfigError(f'{spec.name} = {value} is too large') from None
    if spec.kind is int and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _group_tuple(name: str, value: Any) -> Tuple[str, ...]:
    """Return group names as strings: IEMOCAP sessions may be written as numbers."""
    if not isinstance(value, (list, tuple)) or not all(
            isinstance(v, (int, str)) and not isinstance(v, bool) for v in value):
        raise ConfigError(f'{name} must be a list of group names (e.g. session numbers), '
                          f'not {value!r}')
    return tuple(str(v) for v in value)


class _Yaml12FloatLoader(yaml.SafeLoader):
    """PyYAML's safe loader with YAML 1.2's floats: an exponent needs no dot."""


_Yaml12FloatLoader.add_implicit_resolver(
    'tag:yaml.org,2002:float', re.compile(r'^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$'),
    list('-+0123456789'))
