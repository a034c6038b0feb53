"""
Rosbag2 files for evaluation, read and written with the pure-Python ``rosbags`` package.

* :mod:`.typestore`: a ``rosbags`` typestore (ROS 2 Humble base) with this package's messages,
  ``audio_common_msgs`` and ``hri_msgs/LiveSpeech`` registered, so that bags open with the real
  message types.
* :mod:`.convert`: IEMOCAP dialogs (or the synthetic corpus) to rosbag2 (MCAP or sqlite3,
  metadata version 8, readable by Humble and later).

No ROS runtime is imported here.
"""
