"""
Shape raw listener head poses into safe, smooth commands.

Non-finite targets are replaced by the last good value, targets are low-pass filtered, each axis
is velocity limited and clamped to its range, and without input the head eases back to neutral.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np

from listener_head_ros.schema import setting


@dataclass(frozen=True)
class MotionLimits:
    """Per-axis head angle ranges (radians, REP-103) and the per-axis speed limit (rad/s)."""

    roll_min: float = setting(-0.35, 'Lowest roll, rad.', (-1.5, 0.0))
    roll_max: float = setting(0.35, 'Highest roll, rad.', (0.0, 1.5))
    pitch_min: float = setting(-0.35, 'Lowest pitch (head up), rad.', (-1.5, 0.0))
    pitch_max: float = setting(0.45, 'Highest pitch (head down), rad.', (0.0, 1.5))
    yaw_min: float = setting(-0.6, 'Lowest yaw (right), rad.', (-3.0, 0.0))
    yaw_max: float = setting(0.6, 'Highest yaw (left), rad.', (0.0, 3.0))
    max_angular_velocity: float = setting(1.5, 'Speed limit per axis, rad/s.', (0.01, 20.0))

    def __post_init__(self) -> None:
        for axis in ("roll", "pitch", "yaw"):
            low, high = getattr(self, f"{axis}_min"), getattr(self, f"{axis}_max")
            if not (math.isfinite(low) and math.isfinite(high) and low <= 0.0 <= high):
                raise ValueError(f"{axis} limits must be finite and satisfy min <= 0 <= max")
        if not (math.isfinite(self.max_angular_velocity) and self.max_angular_velocity > 0.0):
            raise ValueError("max_angular_velocity must be positive and finite")

    @property
    def lower(self) -> np.ndarray:
        """Return the (roll, pitch, yaw) minima."""
        return np.array([self.roll_min, self.pitch_min, self.yaw_min])

    @property
    def upper(self) -> np.ndarray:
        """Return the (roll, pitch, yaw) maxima."""
        return np.array([self.roll_max, self.pitch_max, self.yaw_max])


def within_speed(start: np.ndarray, end: np.ndarray, dt: float, speed) -> np.ndarray:
    """
    Return ``end``, brought one representable value back towards ``start`` where it is too fast.

    A move is first limited to ``speed * dt``; adding that step to ``start`` can round past it
    (by half a unit in the last place of ``start``, which a tiny ``dt`` turns into any speed).
    The value one step back is short of the limit, so ``(end - start) / dt`` stays within
    ``speed`` up to the rounding of that division. ``dt`` must be positive.
    """
    too_fast = np.abs(end - start) / dt > speed
    return np.where(too_fast, np.nextafter(end, start), end)


@dataclass(frozen=True)
class ShapedPose:
    """A shaped head pose in radians and its per-axis angular velocity in rad/s."""

    roll: float
    pitch: float
    yaw: float
    angular_velocity: np.ndarray = field(default_factory=lambda: np.zeros(3))

    def as_array(self) -> np.ndarray:
        """Return (roll, pitch, yaw) as a (3,) array."""
        return np.array([self.roll, self.pitch, self.yaw])


class PoseShaper:
    """
    Smooth, velocity-limit and clamp a stream of target poses; ease to neutral without input.

    Guarantees for every :meth:`update`: the pose is finite, within ``limits``, and each axis
    moves no faster than ``limits.max_angular_velocity``.
    """

    def __init__(
        self,
        limits: Optional[MotionLimits] = None,
        smoothing_time_constant: float = 0.08,
        neutral_return_time: float = 1.0,
    ) -> None:
        if not (math.isfinite(smoothing_time_constant) and smoothing_time_constant >= 0.0):
            raise ValueError("smoothing_time_constant must be finite and >= 0")
        if not (math.isfinite(neutral_return_time) and neutral_return_time > 0.0):
            raise ValueError("neutral_return_time must be positive and finite")
        self.limits = limits if limits is not None else MotionLimits()
        self.smoothing_time_constant = float(smoothing_time_constant)
        self.neutral_return_time = float(neutral_return_time)
        self._lower = self.limits.lower
        self._upper = self.limits.upper
        self.reset()

    def reset(self) -> None:
        """Return to neutral, at rest, with no remembered target."""
        self._pose = np.zeros(3)
        self._last_target = np.zeros(3)
        self._return_from: Optional[np.ndarray] = None
        self._return_elapsed = 0.0

    @property
    def pose(self) -> np.ndarray:
        """Return a copy of the current (roll, pitch, yaw)."""
        return self._pose.copy()

    def update(self, target: Optional[Sequence[float]], dt: float) -> ShapedPose:
        """
        Advance ``dt`` seconds towards ``target`` (roll, pitch, yaw), or to neutral if None.

        A non-finite or non-positive ``dt`` leaves the pose unchanged with zero velocity.
        """
        if not (math.isfinite(dt) and dt > 0.0):
            return self._result(np.zeros(3))
        if target is None:
            desired = self._neutral_return(dt)
        else:
            desired = self._smoothed(target, dt)
        max_step = self.limits.max_angular_velocity * dt
        step = np.clip(desired - self._pose, -max_step, max_step)
        new_pose = within_speed(self._pose, np.clip(self._pose + step, self._lower, self._upper),
                                dt, self.limits.max_angular_velocity)
        velocity = (new_pose - self._pose) / dt
        self._pose = new_pose
        return self._result(velocity)

    def _smoothed(self, target: Sequence[float], dt: float) -> np.ndarray:
        self._return_from = None
        raw = np.asarray(target, dtype=np.float64).reshape(-1)
        if raw.size != 3:
            raise ValueError(f"target must be (roll, pitch, yaw), got {raw.size} values")
        good = np.isfinite(raw)
        self._last_target = np.clip(
            np.where(good, raw, self._last_target), self._lower, self._upper
        )
        tau = self.smoothing_time_constant
        alpha = 1.0 if tau == 0.0 else -math.expm1(-dt / tau)
        return self._pose + alpha * (self._last_target - self._pose)

    def _neutral_return(self, dt: float) -> np.ndarray:
        if self._return_from is None:
            self._return_from = self._pose.copy()
            self._return_elapsed = 0.0
            self._last_target = np.zeros(3)
        self._return_elapsed += dt
        progress = min(self._return_elapsed / self.neutral_return_time, 1.0)
        remaining = 0.5 + 0.5 * math.cos(math.pi * progress)
        return self._return_from * remaining

    def _result(self, velocity: np.ndarray) -> ShapedPose:
        return ShapedPose(
            roll=float(self._pose[0]),
            pitch=float(self._pose[1]),
            yaw=float(self._pose[2]),
            angular_velocity=velocity,
        )
