"""
A ``rosbags`` typestore: this package's messages, ``audio_common_msgs`` and ``LiveSpeech``.

The base is :attr:`rosbags.typesys.Stores.ROS2_HUMBLE`, so the bags written with it carry
definitions that Humble (and every later distribution) reads. ``audio_common_msgs`` and
``hri_msgs/msg/LiveSpeech`` (:data:`HRI_MSGS`) are embedded here as text (the field lists of
the released packages), so the product never depends on the test-only stand-in packages. This
package's own definitions are read from ``msg/``: the source tree first, then the install space
(``share/listener_head_ros/msg`` through ``ament_index``), else the embedded copy
:data:`EMBEDDED_LISTENER_MSGS` (a test keeps it equal to ``msg/*.msg``).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Dict, Optional

from rosbags.typesys import get_types_from_msg, get_typestore, Stores
from rosbags.typesys.store import Typestore

PACKAGE = 'listener_head_ros'
AUDIO_DATA = 'audio_common_msgs/msg/AudioData'
AUDIO_DATA_STAMPED = 'audio_common_msgs/msg/AudioDataStamped'
AUDIO_INFO = 'audio_common_msgs/msg/AudioInfo'
HEAD_POSE = f'{PACKAGE}/msg/HeadPose'
FACIAL_REACTION = f'{PACKAGE}/msg/FacialReaction'
BACKCHANNEL = f'{PACKAGE}/msg/Backchannel'
LIVE_SPEECH = 'hri_msgs/msg/LiveSpeech'
STRING = 'std_msgs/msg/String'
CLOCK = 'rosgraph_msgs/msg/Clock'

# ros-drivers audio_common_msgs (Humble/Jazzy releases), from their published field lists.
AUDIO_COMMON_MSGS: Dict[str, str] = {
    AUDIO_DATA: 'uint8[] data\n',
    AUDIO_DATA_STAMPED: 'std_msgs/Header header\naudio_common_msgs/AudioData audio\n',
    AUDIO_INFO: ('uint8 channels\n'
                 'uint32 sample_rate\n'
                 'string sample_format\n'
                 'uint32 bitrate\n'
                 'string coding_format\n'),
}

# ros4hri hri_msgs LiveSpeech (the 2.x releases for Humble / Jazzy: ros4hri/hri_msgs-release),
# from its published field list: a speech recogniser's incremental and final results.
HRI_MSGS: Dict[str, str] = {
    LIVE_SPEECH: ('std_msgs/Header header\n'
                  'string incremental\n'
                  'string final\n'
                  'float64 confidence\n'
                  'string locale\n'
                  'string language\n'),
}

# A copy of msg/*.msg, used only where neither the source tree nor the install space has them.
EMBEDDED_LISTENER_MSGS: Dict[str, str] = {
    'Backchannel': '''\
# A discrete listener response, for robots without continuous head control.
# The event starts at header.stamp.

string NOD=nod
string SHAKE=shake
string TILT=tilt
string SMILE=smile

std_msgs/Header header

string type         # one of the constants above
float32 intensity   # 0..1
float32 duration    # seconds
''',
    'FacialReaction': '''\
# The listener's facial reaction at one instant. Arrays are self-describing:
# names[i] labels values[i], as in sensor_msgs/JointState.

std_msgs/Header header

# Apple ARKit blendshapes (52 names, e.g. eyeBlinkLeft, mouthSmileRight).
string[] blendshape_names
float32[] blendshape_weights  # 0..1

# Facial action units (FACS, e.g. AU12 = lip corner puller).
string[] action_unit_names
float32[] action_unit_values  # 0..1 intensity

float32 valence  # -1..1, negative to positive
float32 arousal  # -1..1, calm to excited

# Expression label from the hri_msgs/Expression vocabulary (neutral, happy, ...).
string expression

float32 confidence  # 0..1
''',
    'HeadPose': '''\
# Listener head orientation, relative to the neutral (straight-ahead) head.
#
# Axes follow REP-103 in the head frame (x forward, y left, z up):
#   roll  about x, positive tilts the head towards the right shoulder
#   pitch about y, positive tilts the head down (a nod goes positive, then back)
#   yaw   about z, positive turns the head to the left

std_msgs/Header header

float64 roll   # radians
float64 pitch  # radians
float64 yaw    # radians

# Angular velocity of (roll, pitch, yaw) as x, y, z, in rad/s.
# Only meaningful when has_angular_velocity is true.
bool has_angular_velocity
geometry_msgs/Vector3 angular_velocity
''',
}


def source_msg_dir() -> Path:
    """Return ``msg/`` of the source tree this module belongs to (it may not exist)."""
    return Path(__file__).resolve().parents[2] / 'msg'


def find_msg_dir() -> Optional[Path]:
    """Return the folder holding ``HeadPose.msg`` etc.: source tree, then install space."""
    candidates = [source_msg_dir()]
    try:
        from ament_index_python.packages import get_package_share_directory
        candidates.append(Path(get_package_share_directory(PACKAGE)) / 'msg')
    except (ImportError, LookupError, ValueError):
        pass
    for folder in candidates:
        if all((folder / f'{name}.msg').is_file() for name in EMBEDDED_LISTENER_MSGS):
            return folder
    return None


def listener_msg_definitions() -> Dict[str, str]:
    """Return ``{type name: .msg text}`` of this package's messages."""
    folder = find_msg_dir()
    texts = {name: ((folder / f'{name}.msg').read_text(encoding='utf-8') if folder else text)
             for name, text in EMBEDDED_LISTENER_MSGS.items()}
    return {f'{PACKAGE}/msg/{name}': text for name, text in texts.items()}


@lru_cache(maxsize=1)
def listener_typestore() -> Typestore:
    """Return the Humble typestore with ``audio_common_msgs``, LiveSpeech and this package."""
    store = get_typestore(Stores.ROS2_HUMBLE)
    types = {}
    for name, text in {**AUDIO_COMMON_MSGS, **HRI_MSGS, **listener_msg_definitions()}.items():
        types.update(get_types_from_msg(text, name))
    store.register(types)
    return store
