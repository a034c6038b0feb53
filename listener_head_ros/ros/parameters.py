"""Declare node parameters from specs, each with a descriptor: description, type and range."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Optional, Tuple, Union

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.node import Node

from listener_head_ros.schema import SettingSpec


@dataclass(frozen=True)
class ParameterSpec:
    """One parameter: name, default value, description and an optional inclusive range."""

    name: str
    default: Any
    description: str
    range: Optional[Tuple[float, float]] = None


def declare_parameters(node: Node, specs: Iterable[Union[ParameterSpec, SettingSpec]],
                       read_only: bool = False) -> None:
    """Declare every spec on ``node``; tuples become arrays, ranges become descriptor ranges."""
    for spec in specs:
        default = list(spec.default) if isinstance(spec.default, tuple) else spec.default
        descriptor = ParameterDescriptor(name=spec.name, description=spec.description,
                                         read_only=read_only)
        if spec.range is not None:
            low, high = spec.range
            if isinstance(default, bool) or not isinstance(default, (int, float)):
                raise TypeError(f'parameter {spec.name}: a range needs a numeric default')
            if isinstance(default, int):
                descriptor.integer_range = [IntegerRange(from_value=int(low),
                                                         to_value=int(high), step=1)]
            else:
                descriptor.floating_point_range = [FloatingPointRange(
                    from_value=float(low), to_value=float(high), step=0.0)]
        node.declare_parameter(spec.name, default, descriptor)
