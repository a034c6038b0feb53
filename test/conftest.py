"""Shared pytest set-up: an isolated DDS domain on loopback, and rclpy fixtures."""

import os
import random

import pytest
from hypothesis import HealthCheck, settings

# Property tests are reproducible and never timed: a fixed derandomised search, no example
# database left in the checkout, and no per-example deadline on a loaded 2-core machine.
settings.register_profile(
    'listener_head_ros', derandomize=True, database=None, deadline=None,
    suppress_health_check=[HealthCheck.too_slow])
settings.load_profile('listener_head_ros')

# Every test run talks DDS only to itself: a domain of its own, discovery limited to this host.
os.environ.setdefault('ROS_DOMAIN_ID', str(random.Random(os.getpid()).randint(1, 100)))
os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')


@pytest.fixture
def rclpy_context():
    """Yield an initialised rclpy context and shut it down afterwards."""
    rclpy = pytest.importorskip('rclpy')
    context = rclpy.context.Context()
    rclpy.init(context=context)
    try:
        yield context
    finally:
        if context.ok():
            rclpy.shutdown(context=context)


@pytest.fixture(scope='session')
def react_face(tmp_path_factory):
    """Return the tiny facial model trained on the small synthetic REACT corpus (seconds)."""
    from react_fixture import train_tiny_face
    return train_tiny_face(tmp_path_factory.mktemp('react_face'))
