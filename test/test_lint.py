"""Ament-style lint as tests: flake8 and pep257 with the ament configurations."""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LIBRARY_TREES = [str(ROOT / p) for p in ('listener_head_ros', 'launch', 'training', 'benchmarks')
                 if (ROOT / p).exists()]
PYTHON_TREES = LIBRARY_TREES + [str(ROOT / 'test')]


@pytest.mark.linter
def test_flake8():
    """Check code style with ament_flake8's configuration (line length 99)."""
    main_with_errors = pytest.importorskip('ament_flake8.main').main_with_errors
    rc, errors = main_with_errors(argv=PYTHON_TREES)
    assert rc == 0, f'{len(errors)} flake8 error(s):\n' + '\n'.join(errors)


@pytest.mark.linter
def test_pep257():
    """Check docstrings with ament_pep257's convention."""
    main = pytest.importorskip('ament_pep257.main').main
    assert main(argv=PYTHON_TREES) == 0, 'pep257 found docstring problems (see the output)'


@pytest.mark.linter
def test_public_api_has_docstrings():
    """Require docstrings on the public classes, methods and functions of the library."""
    main = pytest.importorskip('ament_pep257.main').main
    rc = main(argv=['--add-select', 'D101', 'D102', 'D103', '--'] + LIBRARY_TREES)
    assert rc == 0, 'public classes or functions without a docstring (see the output)'
