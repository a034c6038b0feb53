"""`pip install .` gives the ROS-free core: a wheel with the core modules and no ROS imports."""

import ast
from pathlib import Path
import shutil
import subprocess
import sys
import zipfile

ROOT = Path(__file__).resolve().parents[1]
ROS_MODULES = ('rclpy', 'rcl_interfaces', 'audio_common_msgs', 'hri_msgs', 'std_msgs',
               'sensor_msgs', 'diagnostic_msgs', 'trajectory_msgs', 'launch', 'launch_ros',
               'listener_head_ros.msg', 'listener_head_ros.ros')


def _imports(path: Path) -> set:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_core_imports_no_ros():
    """No module outside listener_head_ros/ros imports a ROS module."""
    offenders = []
    for path in (ROOT / 'listener_head_ros').rglob('*.py'):
        if 'ros' in path.relative_to(ROOT / 'listener_head_ros').parts[:1]:
            continue
        for name in _imports(path):
            if any(name == m or name.startswith(m + '.') for m in ROS_MODULES):
                offenders.append(f'{path.relative_to(ROOT)} imports {name}')
    assert not offenders, '\n'.join(offenders)


def test_wheel_contains_the_core(tmp_path):
    """Build the wheel that `pip install .` would install and check its contents."""
    source = tmp_path / 'source'
    shutil.copytree(ROOT / 'listener_head_ros', source / 'listener_head_ros',
                    ignore=shutil.ignore_patterns('__pycache__'))
    for name in ('setup.py', 'setup.cfg', 'README.md'):
        shutil.copy(ROOT / name, source / name)
    subprocess.run([sys.executable, '-m', 'pip', 'wheel', '--no-deps', '--no-build-isolation',
                    '--quiet', '-w', str(tmp_path), str(source)], check=True)
    wheel, = tmp_path.glob('listener_head_ros-*.whl')
    names = set(zipfile.ZipFile(wheel).namelist())
    for module in ('__init__.py', 'features.py', 'engine.py', 'models/prosodic.py',
                   'audio/pcm.py', 'data/speech_en.wav'):
        assert f'listener_head_ros/{module}' in names, module
