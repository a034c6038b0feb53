"""
Declarative settings: dataclass fields that carry their description and range, read strictly.

A settings dataclass declares each field once with :func:`setting` (a leaf with a default, a
description and an optional inclusive range) or :func:`group` (a nested settings dataclass,
whose fields get the prefix ``name.``, or none when ``flatten``). From that one declaration:

- :func:`setting_specs` lists every leaf as a dotted name (``limits.roll_min``) with its default,
  description and range: the node declares its ROS parameters from it and tests compare
  ``config/listener.yaml`` against it;
- :func:`from_flat` builds the dataclass from dotted names, strictly: an unknown name is an
  error that names the closest valid one, types are those of ROS parameters (a float must be
  written as a float), ranges are checked, and the dataclasses' own checks run;
- :func:`to_flat` gives the dotted names and values back.
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass
import math
import typing
from typing import Any, Collection, Dict, List, Mapping, Optional, Sequence, Tuple


_DESCRIPTION, _RANGE, _GROUP, _FLATTEN = 'description', 'range', 'group', 'flatten'


class SettingsError(ValueError):
    """Settings are malformed: an unknown name, a wrong type or a value out of range."""


def closest(name: str, known: Collection[str]) -> str:
    """Return ``" (did you mean 'x'?)"`` for the closest of ``known`` to ``name``, or ''."""
    match = difflib.get_close_matches(name, list(known), n=1, cutoff=0.5)
    return f" (did you mean '{match[0]}'?)" if match else ''


def unknown_names(names: Sequence[str], known: Collection[str], kind: str = 'setting') -> str:
    """Return the error naming the first of ``names`` and the closest known one ('' if none)."""
    if not names:
        return ''
    more = f' (and {len(names) - 1} more: {", ".join(names[1:])})' if len(names) > 1 else ''
    return f'unknown {kind} {names[0]!r}{closest(names[0], known)}{more}'


def setting(default: Any, description: str, range: Optional[Tuple[float, float]] = None
            ) -> Any:
    """Declare a leaf setting: its default, a one-line description and an inclusive range."""
    return dataclasses.field(default=default, metadata={_DESCRIPTION: description,
                                                        _RANGE: range})


def group(kind: type, description: str, flatten: bool = False) -> Any:
    """Declare a nested settings dataclass; ``flatten`` puts its fields at this level."""
    return dataclasses.field(default_factory=kind, metadata={
        _DESCRIPTION: description, _GROUP: kind, _FLATTEN: flatten})


@dataclass(frozen=True)
class SettingSpec:
    """One leaf setting: dotted name, default, description, type and optional range."""

    name: str
    default: Any
    description: str
    kind: type  # bool, int, float, str or tuple
    range: Optional[Tuple[float, float]] = None


def _leaf_kind(annotation: Any) -> type:
    origin = typing.get_origin(annotation)
    if origin in (tuple, Tuple):
        return tuple
    if annotation in (bool, int, float, str):
        return annotation
    raise TypeError(f'unsupported setting type {annotation!r}')


def setting_specs(kind: type, prefix: str = '') -> List[SettingSpec]:
    """Return the leaf settings of dataclass ``kind``, with dotted names, in declaration order."""
    hints = typing.get_type_hints(kind)
    specs: List[SettingSpec] = []
    for f in dataclasses.fields(kind):
        if not f.init:
            continue
        if _GROUP in f.metadata:
            inner = prefix if f.metadata[_FLATTEN] else f'{prefix}{f.name}.'
            specs.extend(setting_specs(f.metadata[_GROUP], inner))
            continue
        default = f.default
        if default is dataclasses.MISSING:
            raise TypeError(f'setting {prefix}{f.name} of {kind.__name__} has no default')
        description = f.metadata.get(_DESCRIPTION) or f'{kind.__name__}: {f.name}.'
        specs.append(SettingSpec(f'{prefix}{f.name}', default, description,
                                 _leaf_kind(hints[f.name]), f.metadata.get(_RANGE)))
    return specs


def _check_value(spec: SettingSpec, value: Any) -> Any:
    """Return ``value`` as the spec's type, or raise SettingsError saying what is wrong."""
    name, kind = spec.name, spec.kind
    if kind is bool:
        if not isinstance(value, bool):
            raise SettingsError(f'{name} must be true or false, not {value!r}')
        return value
    if kind is str:
        if not isinstance(value, str):
            raise SettingsError(f'{name} must be a string, not {value!r}')
        return value
    if kind is tuple:
        if isinstance(value, (str, bytes)) or not hasattr(value, '__len__'):
            raise SettingsError(f'{name} must be a list of numbers, not {value!r}')
        items = list(value)
        size = len(spec.default) or len(items)  # an empty default: a list of any length
        if len(items) != size or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in items):
            raise SettingsError(f'{name} must be a list of {len(spec.default)} numbers, '
                                f'not {value!r}')
        return tuple(float(v) for v in items)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SettingsError(f'{name} must be a number, not {value!r}')
    if kind is float and isinstance(value, int):
        raise SettingsError(f'{name} must be written as a float ({float(value)!r}, not '
                            f'{value!r}): ROS parameters are strictly typed')
    if kind is int and not isinstance(value, int):
        raise SettingsError(f'{name} must be an integer, not {value!r}')
    if kind is float and not math.isfinite(value):
        raise SettingsError(f'{name} must be finite, not {value!r}')
    if spec.range is not None and not spec.range[0] <= value <= spec.range[1]:
        raise SettingsError(f'{name} = {value!r} is outside its range '
                            f'[{spec.range[0]}, {spec.range[1]}]')
    return value


def _build(kind: type, values: Mapping[str, Any], prefix: str) -> Any:
    arguments: Dict[str, Any] = {}
    for f in dataclasses.fields(kind):
        if not f.init:
            continue
        if _GROUP in f.metadata:
            inner = prefix if f.metadata[_FLATTEN] else f'{prefix}{f.name}.'
            arguments[f.name] = _build(f.metadata[_GROUP], values, inner)
        elif f'{prefix}{f.name}' in values:
            arguments[f.name] = values[f'{prefix}{f.name}']
    try:
        return kind(**arguments)
    except (TypeError, ValueError) as error:
        where = f' ({prefix.rstrip(".")})' if prefix else ''
        raise SettingsError(f'invalid settings{where}: {error}') from error


def from_flat(kind: type, values: Mapping[str, Any], source: str = 'settings') -> Any:
    """Build dataclass ``kind`` from dotted names; missing names keep their defaults."""
    specs = {spec.name: spec for spec in setting_specs(kind)}
    unknown = unknown_names([name for name in values if name not in specs], specs)
    if unknown:
        raise SettingsError(f'{source}: {unknown}')
    checked = {name: _check_value(specs[name], value) for name, value in values.items()}
    return _build(kind, checked, '')


def to_flat(settings: Any) -> Dict[str, Any]:
    """Return every leaf setting of a settings dataclass instance by dotted name."""
    flat: Dict[str, Any] = {}

    def walk(obj: Any, prefix: str) -> None:
        for f in dataclasses.fields(obj):
            if not f.init:
                continue
            value = getattr(obj, f.name)
            if _GROUP in f.metadata:
                walk(value, prefix if f.metadata[_FLATTEN] else f'{prefix}{f.name}.')
            else:
                flat[f'{prefix}{f.name}'] = value
    walk(settings, '')
    return flat


def flatten(tree: Mapping[str, Any], prefix: str = '') -> Dict[str, Any]:
    """Turn nested mappings into dotted names, as ROS reads a parameter file."""
    flat: Dict[str, Any] = {}
    for key, value in tree.items():
        name = f'{prefix}{key}'
        if isinstance(value, Mapping):
            flat.update(flatten(value, f'{name}.'))
        else:
            flat[name] = value
    return flat
