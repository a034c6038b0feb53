"""Offline training of learned listener models (ROS-free; thin CLIs live in training/)."""
