"""
The one registry of listener network architectures, each declared once with what it needs.

An architecture is a network class (see :mod:`listener_head_ros.models.networks` for the
contract) decorated with :func:`register_network`; its ``architecture`` name is what
checkpoints and training configs name, its ``config_type`` the dataclass of its
hyper-parameters and its ``inputs`` what a listener node must supply. Adding a model is one
file that defines and registers the class, plus its module path in
:data:`BUILTIN_NETWORK_MODULES`; the built-in modules are imported on first need (they import
torch), so this module imports neither.
"""

from __future__ import annotations

import importlib
from typing import Any, Dict, FrozenSet, Mapping, Optional, Tuple

from listener_head_ros.schema import closest

BUILTIN_NETWORK_MODULES: Tuple[str, ...] = ('listener_head_ros.models.networks',
                                            'listener_head_ros.models.flow')
"""Modules that define and register the built-in architectures."""

_NETWORKS: Dict[str, type] = {}


def register_network(network_type: type) -> type:
    """Register a network class under its ``architecture`` name; usable as a decorator."""
    name = getattr(network_type, 'architecture', None)
    if not isinstance(name, str) or not name:
        raise TypeError(f'{network_type.__name__} needs an "architecture" name')
    for attribute in ('config_type', 'inputs', 'noise_dim'):
        if not hasattr(network_type, attribute):
            raise TypeError(f'network {name} needs a "{attribute}" attribute')
    _NETWORKS[name] = network_type
    return network_type


def _import_builtins() -> None:
    for module in BUILTIN_NETWORK_MODULES:
        importlib.import_module(module)


def network_names() -> Tuple[str, ...]:
    """Return the registered architecture names."""
    _import_builtins()
    return tuple(_NETWORKS)


def network_type(architecture: str) -> type:
    """Return the network class of ``architecture``; raise ValueError naming the closest."""
    _import_builtins()
    if architecture not in _NETWORKS:
        raise ValueError(f'unknown architecture {architecture!r}'
                         f'{closest(str(architecture), _NETWORKS)}; known: '
                         f'{", ".join(_NETWORKS)}')
    return _NETWORKS[architecture]


def network_inputs(architecture: str) -> FrozenSet[str]:
    """Return the inputs that ``architecture`` needs from a listener node."""
    return frozenset(network_type(architecture).inputs)


def build_network(architecture: str, config: Optional[Mapping[str, Any]] = None) -> Any:
    """Build a freshly initialised network from its architecture name and config fields."""
    import dataclasses
    kind = network_type(architecture)
    settings = dict(config or {})
    known = {f.name for f in dataclasses.fields(kind.config_type)}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise ValueError(f'unknown {architecture} settings {unknown}'
                         f'{closest(unknown[0], known)}')
    return kind(kind.config_type(**settings))
