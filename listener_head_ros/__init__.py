"""
listener_head_ros: speech in, listener head motion and facial reactions out.

The core (everything but :mod:`listener_head_ros.ros`) imports no ROS module.
"""

from pkgutil import extend_path

# The generated messages (listener_head_ros.msg) live in the colcon install space and the
# hand-written modules in the source tree or a pip install; let either location complete the other.
__path__ = extend_path(__path__, __name__)

__version__ = '0.1.0'
