"""Unit tests of the robot head profiles and the pose-to-joint commander (no ROS)."""

from pathlib import Path

import numpy as np
import pytest
import yaml

from listener_head_ros.head_profile import (
    available_head_profiles, HeadCommandSettings, HeadJointCommander, HeadProfile,
    HeadProfileError, JointSpec, load_head_profile)

SHIPPED = ('generic_3dof', 'tiago', 'nao')
TOL = 1e-9
GENERIC_JOINT = {'name': 'j', 'axis': 'pitch', 'sign': 1.0, 'offset': 0.0, 'min': -0.5,
                 'max': 0.5, 'max_velocity': 1.0}


def run(commander: HeadJointCommander, pose, start: float, duration: float, dt: float = 0.02):
    """Update the commander with the same pose every dt for duration seconds; return the end."""
    steps = int(round(duration / dt))
    for step in range(1, steps + 1):
        positions = commander.update(pose, start + step * dt)
    return positions, start + steps * dt


def commander_for(profile: HeadProfile, **settings) -> HeadJointCommander:
    """Return a commander of the profile with the given HeadCommandSettings changes."""
    return HeadJointCommander(profile, HeadCommandSettings(**settings))


def settled(commander: HeadJointCommander, start: float = 0.0, dt: float = 0.02) -> float:
    """Hold neutral until the start-up time_from_start has elapsed; return the time reached."""
    _, now = run(commander, None, start, commander.time_from_start + 2 * dt, dt)
    return now


def write_profile(tmp_path: Path, data) -> Path:
    """Write a profile mapping (or raw text) to a YAML file and return its path."""
    path = tmp_path / 'head.yaml'
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return path


def profile_with(**joint_changes) -> dict:
    """Return a one-joint profile mapping whose joint has the given changes."""
    joint = {**GENERIC_JOINT, **joint_changes}
    return {'name': 'test', 'trajectory_topic': 'head/cmd', 'joints': [joint]}


@pytest.mark.parametrize('name', SHIPPED)
def test_shipped_profiles_load(name):
    """Every shipped profile loads by name, with neutral offsets inside the limits."""
    assert name in available_head_profiles()
    profile = load_head_profile(name)
    assert profile.name == name
    assert profile.trajectory_topic == 'head_controller/joint_trajectory'
    assert len(profile.joints) >= 2
    assert np.all(profile.lower < profile.upper)
    assert np.all((profile.lower <= profile.neutral) & (profile.neutral <= profile.upper))


def test_profile_loads_from_a_path(tmp_path):
    """A YAML file path loads; integers become floats."""
    path = write_profile(tmp_path, profile_with(min=-1, max=1))
    profile = load_head_profile(str(path))
    assert profile.joint_names == ['j'] and profile.joints[0].min == -1.0
    assert isinstance(profile.joints[0].min, float)
    assert load_head_profile(path) == profile


def test_generic_mapping_follows_rep103_angles():
    """The generic head maps roll, pitch and yaw one to one onto its joints."""
    commander = commander_for(load_head_profile('generic_3dof'), hold_time=1.0)
    positions, _ = run(commander, (0.1, -0.2, 0.3), 0.0, 1.0)
    assert commander.joint_names == ['head_roll_joint', 'head_pitch_joint', 'head_yaw_joint']
    np.testing.assert_allclose(positions, [0.1, -0.2, 0.3], atol=TOL)


def test_tiago_pitch_is_inverted_and_roll_ignored():
    """Negate pitch for TIAGo (tilt joint positive up); ignore roll (no roll joint)."""
    commander = commander_for(load_head_profile('tiago'), hold_time=1.0)
    positions, _ = run(commander, (0.3, 0.4, 0.5), 0.0, 1.0)
    assert commander.joint_names == ['head_1_joint', 'head_2_joint']
    np.testing.assert_allclose(positions, [0.5, -0.4], atol=TOL)


def test_offset_and_sign_are_applied():
    """Position is offset + sign * angle."""
    profile = HeadProfile.from_dict(profile_with(sign=-2.0, offset=0.1))
    commander = commander_for(profile, hold_time=1.0)
    positions, _ = run(commander, (0.0, 0.1, 0.0), 0.0, 1.0)
    np.testing.assert_allclose(positions, [0.1 - 0.2], atol=TOL)


def test_targets_are_clamped_to_limits():
    """Unreachable poses stop at the joint limits."""
    profile = load_head_profile('generic_3dof')
    commander = commander_for(profile, hold_time=1.0)
    positions, now = run(commander, (5.0, 5.0, -5.0), 0.0, 1.0)
    np.testing.assert_allclose(positions, [0.35, 0.45, -0.6], atol=TOL)
    positions, _ = run(commander, (-5.0, -5.0, 5.0), now, 1.0)
    np.testing.assert_allclose(positions, [-0.35, -0.35, 0.6], atol=TOL)


def test_rate_limit_per_joint():
    """Each joint moves at most max_velocity * dt per update, and reports that velocity."""
    profile = load_head_profile('nao')
    commander = commander_for(profile, hold_time=1.0)
    commander.update(None, 0.0)
    positions = commander.update((0.0, 0.5, 2.0), 0.1)
    np.testing.assert_allclose(positions, [0.2, 0.2], atol=TOL)
    np.testing.assert_allclose(commander.velocities, [2.0, 2.0], atol=TOL)
    positions = commander.update(None, 0.2)
    np.testing.assert_allclose(positions, [0.4, 0.4], atol=TOL)
    positions = commander.update(None, 0.3)
    np.testing.assert_allclose(positions, [0.6, 0.5], atol=TOL)
    np.testing.assert_allclose(commander.velocities, [2.0, 1.0], atol=TOL)


def test_long_steps_are_capped_by_max_step():
    """A stall or forward clock jump moves joints no further than max_step allows."""
    commander = commander_for(load_head_profile('nao'), hold_time=60.0, control_rate=4.0)
    assert commander.settings.max_step == 0.5
    commander.update((0.0, 0.0, 2.0), 0.0)
    positions = commander.update(None, 50.0)
    np.testing.assert_allclose(positions, [1.0, 0.0], atol=TOL)
    np.testing.assert_allclose(commander.velocities, [1.0 / 50.0, 0.0], atol=TOL)
    assert commander.time_from_start == pytest.approx(0.5)


@pytest.mark.parametrize('name, control_rate, time_from_start, step', [
    ('generic_3dof', 5.0, 0.1, 0.3),  # 1.5 rad/s for 0.2 s: the point needs 0.2 s, not 0.1 s
    ('nao', 50.0, 0.001, 0.04),  # 2.0 rad/s for 0.02 s: the point needs 0.02 s, not 1 ms
])
def test_time_from_start_covers_the_step_at_max_velocity(name, control_rate, time_from_start,
                                                         step):
    """A step longer than trajectory_time_from_start allows gets the time it needs (issue 12.9)."""
    profile = load_head_profile(name)
    commander = commander_for(profile, control_rate=control_rate,
                              trajectory_time_from_start=time_from_start)
    period = 1.0 / control_rate
    now = settled(commander, dt=period)
    assert commander.time_from_start == pytest.approx(time_from_start)
    previous = commander.positions
    for tick in (1, 2):  # generic yaw reaches -0.6 in two steps of 0.3
        positions = commander.update((0.0, 0.4, -0.6), now + tick * period)
        moved = np.abs(positions - previous)
        assert np.max(moved) == pytest.approx(step)
        assert commander.time_from_start == pytest.approx(period)
        assert np.all(moved / commander.time_from_start <= profile.max_velocities + TOL)
        assert np.all(np.abs(commander.velocities) <= profile.max_velocities + TOL)
        previous = positions
    run(commander, (0.0, 0.4, -0.6), now + 2 * period, 2.0, period)
    assert commander.time_from_start == pytest.approx(time_from_start)


def test_configured_time_from_start_holds_when_it_suffices():
    """At 50 Hz, 0.1 s covers every step: each point keeps exactly the configured time."""
    commander = commander_for(load_head_profile('generic_3dof'), hold_time=1.0)
    now = settled(commander)
    for step in range(1, 30):
        commander.update((0.3, -0.3, 0.6), now + step * 0.02)
        assert commander.time_from_start == pytest.approx(0.1)


def test_first_commands_give_the_head_time_to_come_from_anywhere():
    """At start-up the head may be at either end of a joint range: the first point covers it."""
    commander = commander_for(load_head_profile('generic_3dof'))
    assert commander.time_from_start == pytest.approx(1.2 / 1.5)  # yaw crosses [-0.6, 0.6]
    commander.update(None, 10.0)
    assert commander.time_from_start == pytest.approx(0.8)
    commander.update(None, 10.5)
    assert commander.time_from_start == pytest.approx(0.3)
    commander.update(None, 11.0)
    assert commander.time_from_start == pytest.approx(0.1)


def test_a_late_tick_stretches_the_next_points_until_the_head_catches_up():
    """After a stall, later points include the time the controller still needs for the last."""
    commander = commander_for(load_head_profile('nao'), trajectory_time_from_start=0.001)
    now = settled(commander)
    commander.update((0.0, 0.0, 2.0), now + 0.3)  # 0.3 s late: a 0.25 s step at 2 rad/s
    assert commander.time_from_start == pytest.approx(0.25)
    commander.update((0.0, 0.0, 2.0), now + 0.32)  # 0.23 s still to go, plus this 0.02 s step
    assert commander.time_from_start == pytest.approx(0.25)
    commander.update((0.0, 0.0, commander.positions[0]), now + 0.34)  # a pose where it is
    assert commander.time_from_start == pytest.approx(0.23)
    commander.update(None, now + 0.6)  # the controller has had the time to get there
    assert commander.time_from_start == pytest.approx(0.001)


def test_watchdog_holds_then_returns_to_neutral():
    """Without poses the head keeps the last pose for hold_time, then eases to neutral."""
    profile = HeadProfile.from_dict(profile_with(offset=0.05, max_velocity=5.0))
    commander = commander_for(profile, hold_time=0.5, neutral_return_velocity=0.25)
    positions, now = run(commander, (0.0, 0.4, 0.0), 0.0, 0.5)
    np.testing.assert_allclose(positions, [0.45], atol=TOL)
    positions, now = run(commander, None, now, 0.48)
    np.testing.assert_allclose(positions, [0.45], atol=TOL)
    assert commander.is_tracking
    positions, now = run(commander, None, now, 0.42)
    assert not commander.is_tracking
    assert 0.05 < positions[0] < 0.45
    assert np.all(np.abs(commander.velocities) <= 0.25 + TOL)
    positions, now = run(commander, None, now, 1.6)
    np.testing.assert_allclose(positions, [0.05], atol=TOL)
    positions, _ = run(commander, (0.0, 0.1, 0.0), now, 1.0)
    np.testing.assert_allclose(positions, [0.15], atol=TOL)


def test_non_finite_poses_hold_the_last_pose_and_feed_the_watchdog():
    """A NaN pose is ignored: the last pose holds, and only hold_time later the head returns."""
    commander = commander_for(load_head_profile('generic_3dof'), hold_time=0.3,
                              neutral_return_velocity=1.0)
    positions, now = run(commander, (0.1, 0.2, 0.3), 0.0, 1.0)
    held, now = run(commander, (0.0, np.nan, 0.0), now, 0.2)
    np.testing.assert_allclose(held, positions, atol=TOL)
    neutral, _ = run(commander, (np.inf, 0.0, 0.0), now, 1.0)
    np.testing.assert_allclose(neutral, [0.0, 0.0, 0.0], atol=TOL)


def test_backwards_time_moves_nothing_and_re_anchors():
    """A clock jump backwards gives a zero step, then control resumes from the new time."""
    commander = commander_for(load_head_profile('generic_3dof'), hold_time=1.0)
    commander.update((0.0, 0.3, 0.0), 100.0)
    before = commander.update(None, 100.1)
    after = commander.update((0.0, 0.3, 0.0), 5.0)
    np.testing.assert_allclose(after, before, atol=TOL)
    np.testing.assert_allclose(commander.velocities, 0.0)
    positions = commander.update(None, 5.1)
    np.testing.assert_allclose(positions[1], before[1] + 0.15, atol=TOL)


def test_unknown_profile_name_lists_the_available_ones():
    """An unknown name names every shipped profile."""
    with pytest.raises(HeadProfileError, match='unknown robot profile') as info:
        load_head_profile('no_such_robot')
    for name in SHIPPED:
        assert name in str(info.value)


@pytest.mark.parametrize('data, message', [
    ({'name': 'x', 'joints': [GENERIC_JOINT]}, 'missing key.*trajectory_topic'),
    ({'name': 'x', 'trajectory_topic': 't',
      'joints': [{k: v for k, v in GENERIC_JOINT.items() if k != 'max'}]}, 'missing key.*max'),
    (profile_with(min=0.5, max=0.5), r'min \(0.5\) must be smaller than max \(0.5\)'),
    (profile_with(min=0.5, max=-0.5), 'must be smaller than max'),
    (profile_with(offset=0.7), r'neutral offset \(0.7\) is outside the joint limits'),
    (profile_with(max_velocity=0.0), r'max_velocity \(0.0\) must be within \[0.01, 20.0\] rad/s'),
    (profile_with(max_velocity=-1.0), 'max_velocity .* must be within'),
    (profile_with(max_velocity=90.0), 'max_velocity .* must be within'),  # deg/s
    (profile_with(min=-120, max=120), r'limits \[-120.0, 120.0\] go beyond a full turn'),
    (profile_with(max=7.0), 'beyond a full turn.*radians'),
    (profile_with(axis='pan'), "unknown axis 'pan'; expected one of roll, pitch, yaw"),
    (profile_with(sign=0.0), 'sign must be non-zero'),
    (profile_with(min='low'), 'min must be a finite number'),
    (profile_with(max=float('inf')), 'max must be a finite number'),
    (profile_with(max_vel=1.0), 'unknown key.*max_vel'),
    ({'name': 'x', 'trajectory_topic': 't', 'joints': [GENERIC_JOINT, GENERIC_JOINT]},
     "duplicate joint name 'j'"),
    ({'name': 'x', 'trajectory_topic': 't', 'joints': []}, 'at least one joint'),
    ({'name': 'x', 'trajectory_topic': 't', 'joints': 'j'}, 'joints must be a list'),
    ({'name': '', 'trajectory_topic': 't', 'joints': [GENERIC_JOINT]}, 'profile name'),
    ([1, 2], 'must be a mapping'),
    ('name: [unclosed', 'not valid YAML'),
])
def test_invalid_profiles_raise_clear_errors(tmp_path, data, message):
    """Each problem in a profile file raises a HeadProfileError naming the file and the cause."""
    path = write_profile(tmp_path, data)
    with pytest.raises(HeadProfileError, match=message) as info:
        load_head_profile(str(path))
    assert str(path) in str(info.value)


def test_missing_file_and_empty_name_raise():
    """A missing path and an empty name raise HeadProfileError (a ValueError)."""
    with pytest.raises(HeadProfileError, match='cannot read robot profile'):
        load_head_profile('/nonexistent/head.yaml')
    with pytest.raises(ValueError, match='empty robot profile name'):
        load_head_profile('  ')


def test_joint_spec_validates_on_construction():
    """Reject bad values in JointSpec and the commander when built directly, too."""
    with pytest.raises(HeadProfileError, match='min'):
        JointSpec('j', 'yaw', 1.0, 0.0, 1.0, -1.0, 1.0)
    with pytest.raises(ValueError, match='shape'):
        HeadJointCommander(load_head_profile('generic_3dof')).update((0.0, 0.0), 0.0)


@pytest.mark.parametrize('changes, message', [
    ({'hold_time': -1.0}, r'hold_time \(-1.0\) must be within \[0.0, 60.0\]'),
    ({'neutral_return_velocity': 0.0}, 'neutral_return_velocity'),
    ({'control_rate': 0.5}, 'control_rate'),
    ({'control_rate': float('nan')}, 'control_rate must be a finite number'),
    ({'trajectory_time_from_start': 0.0}, 'trajectory_time_from_start'),
    ({'trajectory_time_from_start': True}, 'trajectory_time_from_start must be a finite number'),
])
def test_command_settings_are_checked_against_their_ranges(changes, message):
    """Each command setting must be a finite number within its declared range."""
    with pytest.raises(ValueError, match=message):
        HeadCommandSettings(**changes)
    assert HeadCommandSettings(control_rate=5).control_rate == 5.0
