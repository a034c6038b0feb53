"""ROS-free audio input: PCM decoding, streaming resampling and a bounded ring buffer."""
