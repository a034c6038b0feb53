"""pip install of the ROS-free core (`pip install .`, `pip install .[train]`)."""

from setuptools import setup

setup()
