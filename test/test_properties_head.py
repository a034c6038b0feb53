"""
Property tests of the head's safety guarantees (hypothesis), ROS-free.

- Pose shaping: any raw targets and time steps give finite poses within the MotionLimits that
  move no faster than the speed limit.
- The head driver's commands: under any accepted command settings, any shipped or valid custom
  profile, any poses (NaN, inf, huge) and any clock (backwards, stalled, non-finite), every
  command is finite and within the joint limits, and no point asks a joint to exceed its
  max_velocity, neither from the previous command nor from wherever a trajectory controller,
  interpolating towards the previous points, may be when the point arrives.
"""

import math

from hypothesis import given, strategies as st
import numpy as np

from listener_head_ros.head_profile import (
    AXES, available_head_profiles, HeadCommandSettings, HeadJointCommander, HeadProfile,
    JointSpec, load_head_profile)
from listener_head_ros.motion.pose_shaping import MotionLimits, PoseShaper
from listener_head_ros.schema import setting_specs

RTOL = 1e-9  # relative slack for floating-point rounding of speeds
ANY_FLOAT = st.floats(allow_nan=True, allow_infinity=True)
POSES = st.one_of(
    st.none(),
    st.tuples(*[st.floats(-1.5, 1.5)] * 3),
    st.tuples(*[ANY_FLOAT] * 3),
)


def settings_of(kind: type, **likely: st.SearchStrategy) -> st.SearchStrategy:
    """Return a strategy of settings ``kind``: every field within its range, some values likely."""
    return st.builds(kind, **{
        spec.name: st.one_of(likely[spec.name], st.floats(*spec.range))
        if spec.name in likely else st.floats(*spec.range) for spec in setting_specs(kind)})


# The regime: a time_from_start shorter than a control period, or than a late tick.
COMMAND_SETTINGS = settings_of(
    HeadCommandSettings, control_rate=st.sampled_from([5.0, 50.0]),
    trajectory_time_from_start=st.floats(0.001, 0.05))


# Clock events, in seconds or control periods: ticks (late, early, doubled), a timer catching up
# on missed ticks, a long gap (stall, forward jump), a backwards jump and a non-finite time.
CLOCK = st.one_of(
    st.tuples(st.just('periods'), st.floats(0.0, 3.0)),
    st.tuples(st.just('seconds'), st.floats(0.0, 1e-6)),
    st.tuples(st.just('seconds'), st.floats(0.1, 1e6)),
    st.tuples(st.just('seconds'), st.floats(-1e3, 0.0)),
    st.tuples(st.just('now'), st.sampled_from([math.nan, math.inf, -math.inf])),
)


@st.composite
def custom_profiles(draw) -> HeadProfile:
    """Return a valid profile of one to three joints with arbitrary axes, signs and limits."""
    joints = []
    for index in range(draw(st.integers(1, 3))):
        low, high = sorted(draw(st.lists(st.floats(-2 * math.pi, 2 * math.pi), min_size=2,
                                         max_size=2, unique=True)))
        sign = draw(st.one_of(st.sampled_from([1.0, -1.0]), st.floats(-1e3, 1e3)).filter(bool))
        joints.append(JointSpec(
            name=f'joint_{index}', axis=draw(st.sampled_from(AXES)), sign=sign,
            offset=draw(st.floats(low, high)), min=low, max=high,
            max_velocity=draw(st.floats(0.01, 20.0))))
    return HeadProfile('custom', 'head/command', tuple(joints))


PROFILES = st.one_of(st.sampled_from(available_head_profiles()).map(load_head_profile),
                     custom_profiles())


class LinearController:
    """A trajectory controller: it moves linearly from where it is to the newest point."""

    def __init__(self, start: np.ndarray) -> None:
        self.state = start
        self.goal = start
        self.remaining = 0.0

    def advance(self, elapsed: float) -> None:
        """Move ``elapsed`` seconds along the current segment."""
        if elapsed >= self.remaining:
            self.state, self.remaining = self.goal, 0.0
        elif elapsed > 0.0:
            self.state = self.state + (self.goal - self.state) * (elapsed / self.remaining)
            self.remaining -= elapsed

    def command(self, goal: np.ndarray, time_from_start: float) -> np.ndarray:
        """Take a new point; return each joint's speed on the segment towards it."""
        speeds = np.abs(goal - self.state) / time_from_start
        self.goal, self.remaining = goal, time_from_start
        return speeds


@given(profile=PROFILES, settings=COMMAND_SETTINGS, data=st.data())
def test_head_commands_never_exceed_the_joint_limits(profile, settings, data):
    """Every command is finite, within limits, and implies at most each joint's max_velocity."""
    commander = HeadJointCommander(profile, settings)
    limit = profile.max_velocities * (1 + RTOL)
    start = np.array([data.draw(st.floats(joint.min, joint.max)) for joint in profile.joints])
    controller = LinearController(start)  # the head may be anywhere at start-up
    longest = max(settings.trajectory_time_from_start, settings.max_step,
                  commander.time_from_start)
    clock, previous = data.draw(st.sampled_from([0.0, 1.7e9])), commander.positions  # ROS time
    events = st.lists(st.tuples(POSES, CLOCK), min_size=5, max_size=40)
    for pose, (kind, value) in data.draw(events):
        step = value / settings.control_rate if kind == 'periods' else value
        now = value if kind == 'now' else clock + step
        # The controller's time, as the commander sees it; none when the clock is unusable.
        elapsed = 0.0 if kind == 'now' else max(now - clock, 0.0)
        clock = clock if kind == 'now' else now
        positions = commander.update(pose, now)
        time_from_start = commander.time_from_start
        assert np.all(np.isfinite(positions)) and np.all(np.isfinite(commander.velocities))
        assert np.all(positions >= profile.lower) and np.all(positions <= profile.upper)
        assert np.all(np.abs(commander.velocities) <= limit)
        assert settings.trajectory_time_from_start <= time_from_start <= longest
        assert np.all(np.abs(positions - previous) / time_from_start <= limit)
        controller.advance(elapsed)
        assert np.all(controller.command(positions, time_from_start) <= limit + 1e-12)
        previous = positions


@given(limits=settings_of(MotionLimits), smoothing=st.floats(0.0, 1e3),
       neutral_return_time=st.floats(1e-6, 1e3), data=st.data())
def test_shaped_poses_stay_finite_within_limits_and_speed(limits, smoothing,
                                                          neutral_return_time, data):
    """Any targets and time steps give finite poses within limits, under the speed limit."""
    shaper = PoseShaper(limits, smoothing, neutral_return_time)
    speed = limits.max_angular_velocity
    targets = st.one_of(POSES, st.tuples(*[st.floats(-1e308, 1e308)] * 3))
    steps = st.one_of(st.floats(1e-4, 0.1), st.floats(0.0, 1e-12), ANY_FLOAT)
    previous = shaper.pose
    for target, dt in data.draw(st.lists(st.tuples(targets, steps), min_size=5, max_size=40)):
        out = shaper.update(target, dt)
        pose = out.as_array()
        assert np.all(np.isfinite(pose)) and np.all(np.isfinite(out.angular_velocity))
        assert np.all(pose >= limits.lower) and np.all(pose <= limits.upper)
        assert np.all(np.abs(out.angular_velocity) <= speed * (1 + RTOL))
        if math.isfinite(dt) and dt > 0.0:
            assert np.array_equal(out.angular_velocity, (pose - previous) / dt)
        else:
            assert np.array_equal(pose, previous) and not np.any(out.angular_velocity)
        previous = pose
