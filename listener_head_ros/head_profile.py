"""
Robot head profiles and the mapping from listener head poses to safe joint commands.

A profile (``config/robots/<name>.yaml``) names the head joints of one robot. Each joint follows
one HeadPose angle (REP-103: +roll towards the right shoulder, +pitch head down, +yaw left)::

    position = offset + sign * angle

then is clamped to ``[min, max]`` and rate limited to ``max_velocity``. The ``offset`` is the
joint's neutral (straight-ahead) position. Each joint command also carries the time the robot's
trajectory controller is given to reach it, long enough that no joint exceeds its
``max_velocity`` (:class:`HeadJointCommander`). This module imports no ROS module.
"""

from __future__ import annotations

from dataclasses import dataclass
import math
from numbers import Real
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import numpy as np
import yaml

from listener_head_ros.motion.pose_shaping import within_speed
from listener_head_ros.schema import setting, setting_specs

# The HeadPose angles a joint can follow, in the order of a pose tuple.
AXES = ('roll', 'pitch', 'yaw')

PACKAGE_NAME = 'listener_head_ros'
_REQUIRED_PROFILE_KEYS = ('name', 'trajectory_topic', 'joints')
_REQUIRED_JOINT_KEYS = ('name', 'axis', 'min', 'max', 'max_velocity')
_OPTIONAL_JOINT_KEYS = {'sign': 1.0, 'offset': 0.0}
_PROFILE_SUFFIXES = ('.yaml', '.yml')
# Joint positions are radians of a head joint, which turns less than a full turn either way.
_POSITION_BOUND = 2.0 * math.pi
# A head joint's speed limit, rad/s: above it is most likely a deg/s typo.
_VELOCITY_RANGE = (0.01, 20.0)


class HeadProfileError(ValueError):
    """A robot head profile cannot be found, read or validated."""


@dataclass(frozen=True)
class JointSpec:
    """
    One head joint: which pose angle it follows and how.

    ``position = offset + sign * angle``, clamped to ``[min, max]`` (radians) and moved no faster
    than ``max_velocity`` (rad/s). ``offset`` is the neutral position and must lie within limits.
    """

    name: str
    axis: str
    sign: float
    offset: float
    min: float
    max: float
    max_velocity: float

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise HeadProfileError(f'joint name must be a non-empty string, got {self.name!r}')
        where = f'joint {self.name!r}'
        if self.axis not in AXES:
            raise HeadProfileError(
                f'{where}: unknown axis {self.axis!r}; expected one of {", ".join(AXES)}')
        for key in ('sign', 'offset', 'min', 'max', 'max_velocity'):
            value = _finite_number(getattr(self, key), f'{where}: {key}', HeadProfileError)
            object.__setattr__(self, key, value)
        if self.sign == 0.0:
            raise HeadProfileError(f'{where}: sign must be non-zero (use +1.0 or -1.0)')
        if self.min >= self.max:
            raise HeadProfileError(
                f'{where}: min ({self.min}) must be smaller than max ({self.max})')
        if not (-_POSITION_BOUND <= self.min and self.max <= _POSITION_BOUND):
            raise HeadProfileError(
                f'{where}: limits [{self.min}, {self.max}] go beyond a full turn '
                f'(+-{_POSITION_BOUND:.4f}); limits are in radians')
        if not self.min <= self.offset <= self.max:
            raise HeadProfileError(
                f'{where}: neutral offset ({self.offset}) is outside the joint limits '
                f'[{self.min}, {self.max}]')
        low, high = _VELOCITY_RANGE
        if not low <= self.max_velocity <= high:
            raise HeadProfileError(
                f'{where}: max_velocity ({self.max_velocity}) must be within [{low}, {high}] '
                'rad/s')


@dataclass(frozen=True)
class HeadProfile:
    """A robot head: its name, the default JointTrajectory topic and its joints."""

    name: str
    trajectory_topic: str
    joints: tuple[JointSpec, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise HeadProfileError(f'profile name must be a non-empty string, got {self.name!r}')
        if not isinstance(self.trajectory_topic, str) or not self.trajectory_topic.strip():
            raise HeadProfileError(
                f'trajectory_topic must be a non-empty string, got {self.trajectory_topic!r}')
        if not self.joints:
            raise HeadProfileError('a head profile needs at least one joint')
        seen = set()
        for joint in self.joints:
            if joint.name in seen:
                raise HeadProfileError(f'duplicate joint name {joint.name!r}')
            seen.add(joint.name)

    @classmethod
    def from_dict(cls, data: Any) -> HeadProfile:
        """Build and validate a profile from parsed YAML (a mapping)."""
        if not isinstance(data, Mapping):
            raise HeadProfileError(
                f'a head profile must be a mapping, got {type(data).__name__}')
        _check_keys(data, _REQUIRED_PROFILE_KEYS, (), 'profile')
        joints = data['joints']
        if not isinstance(joints, Sequence) or isinstance(joints, str):
            raise HeadProfileError(f'joints must be a list, got {type(joints).__name__}')
        specs = []
        for index, entry in enumerate(joints):
            if not isinstance(entry, Mapping):
                raise HeadProfileError(
                    f'joints[{index}] must be a mapping, got {type(entry).__name__}')
            _check_keys(entry, _REQUIRED_JOINT_KEYS, _OPTIONAL_JOINT_KEYS, f'joints[{index}]')
            values = {**_OPTIONAL_JOINT_KEYS, **entry}
            specs.append(JointSpec(**values))
        return cls(name=data['name'], trajectory_topic=data['trajectory_topic'],
                   joints=tuple(specs))

    @property
    def joint_names(self) -> list[str]:
        """Return the joint names in profile order."""
        return [joint.name for joint in self.joints]

    @property
    def axis_indices(self) -> np.ndarray:
        """Return, per joint, the index of its angle in a (roll, pitch, yaw) pose."""
        return np.array([AXES.index(joint.axis) for joint in self.joints], dtype=int)

    @property
    def signs(self) -> np.ndarray:
        """Return the per-joint signs."""
        return np.array([joint.sign for joint in self.joints], dtype=float)

    @property
    def neutral(self) -> np.ndarray:
        """Return the per-joint neutral positions (the offsets)."""
        return np.array([joint.offset for joint in self.joints], dtype=float)

    @property
    def lower(self) -> np.ndarray:
        """Return the per-joint lower position limits."""
        return np.array([joint.min for joint in self.joints], dtype=float)

    @property
    def upper(self) -> np.ndarray:
        """Return the per-joint upper position limits."""
        return np.array([joint.max for joint in self.joints], dtype=float)

    @property
    def max_velocities(self) -> np.ndarray:
        """Return the per-joint velocity limits."""
        return np.array([joint.max_velocity for joint in self.joints], dtype=float)


def _finite_number(value: Any, what: str, error: type[ValueError]) -> float:
    """Return ``value`` as a float, or raise ``error`` unless it is a finite real number."""
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
        raise error(f'{what} must be a finite number, got {value!r}')
    return float(value)


def _check_keys(data: Mapping, required: Sequence[str], optional: Mapping | Sequence[str],
                where: str) -> None:
    """Raise a HeadProfileError for missing or unknown keys of a profile mapping."""
    missing = [key for key in required if key not in data]
    if missing:
        raise HeadProfileError(f'{where}: missing key(s) {", ".join(missing)}')
    unknown = sorted(str(key) for key in data if key not in required and key not in optional)
    if unknown:
        allowed = ', '.join([*required, *optional])
        raise HeadProfileError(
            f'{where}: unknown key(s) {", ".join(unknown)}; allowed keys are {allowed}')


def profile_directories() -> list[Path]:
    """Return the existing directories searched for named profiles, source tree first."""
    candidates = [Path(__file__).resolve().parents[1] / 'config' / 'robots']
    try:
        from ament_index_python.packages import get_package_share_directory
        candidates.append(Path(get_package_share_directory(PACKAGE_NAME)) / 'config' / 'robots')
    except Exception:  # ament_index_python missing (ROS-free install) or package not indexed
        pass
    directories = []
    for candidate in candidates:
        if candidate.is_dir() and candidate.resolve() not in directories:
            directories.append(candidate.resolve())
    return directories


def available_head_profiles() -> list[str]:
    """Return the names of the profiles shipped with the package, sorted."""
    return sorted({path.stem for directory in profile_directories()
                   for path in directory.iterdir() if path.suffix in _PROFILE_SUFFIXES})


def load_head_profile(name_or_path: str | Path) -> HeadProfile:
    """
    Load and validate a head profile by name (e.g. ``'tiago'``) or from a YAML file path.

    A bare name is looked up in the package's ``config/robots`` directories. Anything else (a
    string with a path separator or a ``.yaml``/``.yml`` suffix, or an existing file) is read
    as a path. Raise :class:`HeadProfileError` with the reason when this fails.
    """
    text = str(name_or_path)
    if not text.strip():
        raise HeadProfileError('empty robot profile name; available profiles: '
                               + ', '.join(available_head_profiles()))
    path = Path(text).expanduser()
    is_path = (isinstance(name_or_path, Path) or '/' in text or '\\' in text
               or path.suffix in _PROFILE_SUFFIXES or path.is_file())
    if not is_path:
        path = _find_named_profile(text)
    return _load_profile_file(path)


def _find_named_profile(name: str) -> Path:
    """Return the file of a shipped profile, or raise listing the available ones."""
    for directory in profile_directories():
        for suffix in _PROFILE_SUFFIXES:
            candidate = directory / f'{name}{suffix}'
            if candidate.is_file():
                return candidate
    available = ', '.join(available_head_profiles()) or 'none found'
    raise HeadProfileError(
        f'unknown robot profile {name!r}; available profiles: {available} '
        '(or give the path of a YAML profile file)')


def _load_profile_file(path: Path) -> HeadProfile:
    """Read and validate one YAML profile file."""
    try:
        with open(path, encoding='utf-8') as stream:
            data = yaml.safe_load(stream)
    except OSError as error:
        raise HeadProfileError(f'cannot read robot profile {path}: {error}') from error
    except yaml.YAMLError as error:
        raise HeadProfileError(f'robot profile {path} is not valid YAML: {error}') from error
    try:
        return HeadProfile.from_dict(data)
    except HeadProfileError as error:
        raise HeadProfileError(f'robot profile {path}: {error}') from None


@dataclass(frozen=True)
class HeadCommandSettings:
    """
    How the head driver commands the joints: its rate, the watchdog and the command timing.

    Every value must be a finite number within its declared range; the head driver node
    declares its parameters of the same names from these fields.
    """

    control_rate: float = setting(50.0, 'Rate of the joint command updates, in Hz.', (1.0, 1000.0))
    hold_time: float = setting(
        0.5, 'Seconds without a HeadPose after which the head leaves the last pose and returns to '
        'neutral.', (0.0, 60.0))
    neutral_return_velocity: float = setting(
        0.5, "Joint speed, in rad/s, of the return to neutral (capped by each joint's "
        'max_velocity).', (0.01, 10.0))
    trajectory_time_from_start: float = setting(
        0.1, 'Shortest time_from_start of the single JointTrajectory point, in seconds: a point '
        'gets more time when its slowest joint needs it to stay within its max_velocity.',
        (0.001, 10.0))

    def __post_init__(self) -> None:
        for spec in setting_specs(type(self)):
            value = _finite_number(getattr(self, spec.name), spec.name, ValueError)
            low, high = spec.range
            if not low <= value <= high:
                raise ValueError(f'{spec.name} ({value}) must be within [{low}, {high}]')
            object.__setattr__(self, spec.name, value)

    @property
    def max_step(self) -> float:
        """
        Return the longest time, in seconds, that one update moves the joints for.

        Two control periods, and at least 0.25 s: late ticks (timer jitter, a loaded executor,
        a control rate the machine cannot keep) still move the head at its full speed, while a
        longer stall or a forward clock jump moves it no further than this. It bounds how far
        one command leads the head, not its speed: the command's time_from_start covers the
        step at each joint's max_velocity, however long the step.
        """
        return max(0.25, 2.0 / self.control_rate)


class HeadJointCommander:
    """
    Turn a stream of head poses into joint commands that always respect the profile.

    Each :meth:`update` maps the latest pose onto the joints, clamps the target to the joint
    limits and moves each joint towards it no faster than its ``max_velocity``. Non-finite poses
    are ignored. When no usable pose has arrived for longer than ``hold_time`` seconds, the
    joints stop tracking and ease back to neutral at ``neutral_return_velocity`` (capped by each
    joint's own limit). Every returned position is finite and within ``[min, max]``.

    Time steps longer than ``settings.max_step`` seconds (stalls, forward clock jumps) move the
    joints only as far as ``max_step`` allows, so the head never jumps; a step of zero or less
    (a backwards clock jump) moves nothing and re-anchors the clock.

    Each command also gets a :attr:`time_from_start`: the time the robot's trajectory
    controller has to reach it. A controller interpolates from where it is to the point within
    that time, and it may still be on its way to the previous point, so the point gets the part
    of the previous point's time not yet elapsed plus the time its slowest joint needs for the
    step at ``max_velocity``, and at least ``trajectory_time_from_start``. No command then asks a
    joint to exceed its ``max_velocity``, whatever the settings: a control period longer than
    ``trajectory_time_from_start``, a late tick or a stall stretch the time, never the speed.
    Stretching the time rather than shortening the step keeps the head at its full speed, and
    ``trajectory_time_from_start`` is kept whenever it suffices. At start-up the head may be
    anywhere within its limits, so the first commands get the time to come from the far end
    of the range.
    """

    def __init__(self, profile: HeadProfile,
                 settings: HeadCommandSettings = HeadCommandSettings()) -> None:
        self.profile = profile
        self.settings = settings
        self._axis = profile.axis_indices
        self._sign = profile.signs
        self._neutral = profile.neutral
        self._lower = profile.lower
        self._upper = profile.upper
        self._track_velocity = profile.max_velocities
        self._return_velocity = np.minimum(self._track_velocity,
                                           settings.neutral_return_velocity)
        self._positions = self._neutral.copy()
        self._velocities = np.zeros_like(self._positions)
        self._time_from_start = max(settings.trajectory_time_from_start, float(
            np.max((self._upper - self._lower) / self._track_velocity)))
        self._target = self._neutral.copy()
        self._last_time: Optional[float] = None
        self._pose_age = math.inf

    @property
    def joint_names(self) -> list[str]:
        """Return the joint names, in the order of the position arrays."""
        return self.profile.joint_names

    @property
    def positions(self) -> np.ndarray:
        """Return a copy of the joint positions of the last update; neutral before any."""
        return self._positions.copy()

    @property
    def velocities(self) -> np.ndarray:
        """Return a copy of the joint velocities of the last update, in rad/s."""
        return self._velocities.copy()

    @property
    def time_from_start(self) -> float:
        """Return the seconds the controller is given to reach the last update's positions."""
        return self._time_from_start

    @property
    def is_tracking(self) -> bool:
        """Return whether a pose arrived within ``hold_time`` (otherwise the head is neutral)."""
        return self._pose_age <= self.settings.hold_time

    def update(self, pose: Optional[Sequence[float]], now: float) -> np.ndarray:
        """
        Advance to time ``now`` (seconds) with an optional new (roll, pitch, yaw) pose.

        Return the new joint positions (a copy). ``pose`` is None when no pose arrived since
        the last update; a pose with a non-finite angle counts as no pose.
        """
        dt = self._advance_clock(now)
        joint_pose = self._map_pose(pose)
        if joint_pose is not None:
            self._target = joint_pose
            self._pose_age = 0.0
        else:
            self._pose_age += dt
        if self.is_tracking:
            goal, speed = self._target, self._track_velocity
        else:
            goal, speed = self._neutral, self._return_velocity
        reach = speed * min(dt, self.settings.max_step)
        step = np.clip(goal - self._positions, -reach, reach)
        positions = np.clip(self._positions + step, self._lower, self._upper)
        if dt > 0.0:
            positions = within_speed(self._positions, positions, dt, speed)
        moved = positions - self._positions
        self._velocities = moved / dt if dt > 0.0 else np.zeros_like(moved)
        self._time_from_start = max(
            self.settings.trajectory_time_from_start,
            max(self._time_from_start - dt, 0.0)
            + float(np.max(np.abs(moved) / self._track_velocity)))
        self._positions = positions
        return self._positions.copy()

    def _advance_clock(self, now: float) -> float:
        """Return the time since the last update, 0 for the first, backwards or non-finite."""
        now = float(now)
        if not math.isfinite(now):
            return 0.0
        last, self._last_time = self._last_time, now
        if last is None or now <= last:
            return 0.0
        return now - last

    def _map_pose(self, pose: Optional[Sequence[float]]) -> Optional[np.ndarray]:
        """Return the clamped joint targets of a pose, or None for no or non-finite pose."""
        if pose is None:
            return None
        angles = np.asarray(pose, dtype=float)
        if angles.shape != (len(AXES),):
            raise ValueError(f'a pose is (roll, pitch, yaw), got shape {angles.shape}')
        if not np.all(np.isfinite(angles)):
            return None
        with np.errstate(over='ignore'):
            joint_angles = self._neutral + self._sign * angles[self._axis]
        return np.clip(joint_angles, self._lower, self._upper)
