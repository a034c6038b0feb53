"""
Ament-style lint as tests: flake8 and pep257 with the ament configurations.

Each linter runs in a fresh interpreter: flake8 forks worker processes, and forking a pytest
process that already holds ROS middleware objects (from the integration tests) can crash.
"""

from pathlib import Path
import subprocess
import sys

import pytest

ROOT = Path(__file__).resolve().parents[1]
LIBRARY_TREES = [str(ROOT / p) for p in ('listener_head_ros', 'launch', 'training', 'benchmarks')
                 if (ROOT / p).exists()]
PYTHON_TREES = LIBRARY_TREES + [str(ROOT / 'test')]


def _run_linter(module: str, argv: list) -> subprocess.CompletedProcess:
    pytest.importorskip(module)
    code = f'import sys; from {module} import main; sys.exit(main(argv=sys.argv[1:]))'
    return subprocess.run([sys.executable, '-c', code, *argv], capture_output=True, text=True,
                          timeout=300)


@pytest.mark.linter
def test_flake8():
    """Check code style with ament_flake8's configuration (line length 99)."""
    result = _run_linter('ament_flake8.main', PYTHON_TREES)
    assert result.returncode == 0, f'flake8 errors:\n{result.stdout}\n{result.stderr}'


@pytest.mark.linter
def test_pep257():
    """Check docstrings with ament_pep257's convention."""
    result = _run_linter('ament_pep257.main', PYTHON_TREES)
    assert result.returncode == 0, f'pep257 errors:\n{result.stdout}\n{result.stderr}'


@pytest.mark.linter
def test_public_api_has_docstrings():
    """Require docstrings on the public classes, methods and functions of the library."""
    result = _run_linter('ament_pep257.main',
                         ['--add-select', 'D101', 'D102', 'D103', '--'] + LIBRARY_TREES)
    assert result.returncode == 0, f'missing docstrings:\n{result.stdout}\n{result.stderr}'
