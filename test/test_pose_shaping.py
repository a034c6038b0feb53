"""Property and behaviour tests of the head pose shaper."""

import math

import numpy as np
import pytest

from listener_head_ros.motion.pose_shaping import MotionLimits, PoseShaper, ShapedPose

LIMITS = MotionLimits()
TOL = 1e-9


def assert_safe(out: ShapedPose, limits: MotionLimits = LIMITS) -> None:
    """Assert that a shaped pose is finite, within limits and within the velocity limit."""
    pose = out.as_array()
    assert np.all(np.isfinite(pose)) and np.all(np.isfinite(out.angular_velocity))
    assert np.all(pose >= limits.lower - TOL) and np.all(pose <= limits.upper + TOL)
    assert np.all(np.abs(out.angular_velocity) <= limits.max_angular_velocity + 1e-6)


def test_a_tiny_time_step_never_rounds_past_the_speed_limit():
    """Rounding pose + step cannot make a move faster than the limit, however small dt is."""
    shaper = PoseShaper(MotionLimits(max_angular_velocity=1.5), smoothing_time_constant=0.0)
    shaper.update((0.3, 0.3, 0.3), 0.1)
    for dt in (1e-17, 3.5e-13, 5e-324):
        before = shaper.pose
        out = shaper.update((-0.3, 0.3, 0.6), dt)
        assert np.all(np.abs(out.angular_velocity) <= 1.5 * (1 + 1e-12))
        np.testing.assert_array_equal(out.angular_velocity, (out.as_array() - before) / dt)
    fresh = PoseShaper(MotionLimits(max_angular_velocity=1.5), smoothing_time_constant=0.0)
    assert np.all(np.abs(fresh.update((0.3, 0.3, 0.3), 5e-324).angular_velocity) <= 1.5)


def test_converges_to_a_reachable_target_and_clamps_an_unreachable_one():
    shaper = PoseShaper(smoothing_time_constant=0.05)
    for _ in range(200):
        out = shaper.update((0.1, -0.2, 0.3), 1 / 30)
    np.testing.assert_allclose(out.as_array(), [0.1, -0.2, 0.3], atol=1e-6)
    assert np.allclose(out.angular_velocity, 0.0, atol=1e-4)
    for _ in range(200):
        out = shaper.update((5.0, 5.0, -5.0), 1 / 30)
    np.testing.assert_allclose(out.as_array(), [0.35, 0.45, -0.6])


def test_velocity_limit_bounds_a_step_change():
    shaper = PoseShaper(MotionLimits(max_angular_velocity=1.0), smoothing_time_constant=0.0)
    out = shaper.update((0.3, 0.0, -0.5), 0.1)
    np.testing.assert_allclose(out.as_array(), [0.1, 0.0, -0.1])
    np.testing.assert_allclose(out.angular_velocity, [1.0, 0.0, -1.0])


def test_smoothing_is_a_first_order_low_pass():
    shaper = PoseShaper(MotionLimits(max_angular_velocity=100.0), smoothing_time_constant=0.1)
    out = shaper.update((0.0, 0.2, 0.0), 0.1)
    assert out.pitch == pytest.approx(0.2 * (1 - math.exp(-1.0)))


def test_non_finite_target_holds_the_last_good_value_per_axis():
    shaper = PoseShaper(smoothing_time_constant=0.0)
    for _ in range(30):
        shaper.update((0.1, 0.2, 0.3), 1 / 30)
    for _ in range(30):
        out = shaper.update((np.nan, -0.1, np.inf), 1 / 30)
    np.testing.assert_allclose(out.as_array(), [0.1, -0.1, 0.3])


def test_no_input_eases_back_to_neutral_within_the_return_time():
    shaper = PoseShaper(neutral_return_time=1.0)
    for _ in range(100):
        shaper.update((0.3, 0.4, -0.5), 1 / 50)
    start = shaper.pose
    trajectory = [shaper.update(None, 1 / 50) for _ in range(60)]
    poses = np.array([p.as_array() for p in trajectory])
    for p in trajectory:
        assert_safe(p)
    np.testing.assert_allclose(poses[49], 0.0, atol=1e-9)  # at 1.0 s
    np.testing.assert_allclose(poses[-1], 0.0, atol=1e-12)
    # Monotone and smooth: no overshoot, no sign change, gentle start.
    assert np.all(np.diff(np.abs(poses), axis=0) <= 1e-12)
    assert np.all(poses * np.sign(start) >= -1e-12)
    first_step = np.abs(poses[0] - start)
    assert np.all(first_step < 0.01 * np.abs(start))


def test_input_resumes_after_neutral_return():
    shaper = PoseShaper(smoothing_time_constant=0.0)
    shaper.update((0.2, 0.2, 0.2), 1.0)
    for _ in range(10):
        shaper.update(None, 0.2)
    out = shaper.update((np.nan, 0.1, 0.1), 1.0)
    np.testing.assert_allclose(out.as_array(), [0.0, 0.1, 0.1])


def test_reset_returns_to_rest():
    shaper = PoseShaper()
    shaper.update((0.2, 0.2, 0.2), 1.0)
    shaper.reset()
    np.testing.assert_array_equal(shaper.pose, np.zeros(3))
    out = shaper.update((np.nan, np.nan, np.nan), 0.1)
    np.testing.assert_array_equal(out.as_array(), np.zeros(3))


def test_invalid_settings_are_rejected():
    with pytest.raises(ValueError):
        MotionLimits(roll_min=0.1)
    with pytest.raises(ValueError):
        MotionLimits(yaw_max=np.nan)
    with pytest.raises(ValueError):
        MotionLimits(max_angular_velocity=0.0)
    with pytest.raises(ValueError):
        PoseShaper(neutral_return_time=0.0)
    with pytest.raises(ValueError):
        PoseShaper(smoothing_time_constant=-1.0)
    with pytest.raises(ValueError):
        PoseShaper().update((0.0, 0.0), 0.1)
