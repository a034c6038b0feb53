"""
Prepare the REACT 2025 feature cache once: ``training/prepare_react.py --root R --cache C``.

Thin command line over :class:`listener_head_ros.data.react2025.React2025Source` and
:func:`listener_head_ros.data.feature_cache.prepare_cache`; the release layout and the cache
format are described in ``docs/data_format.md``.
"""

import argparse
from pathlib import Path
import sys
from typing import List, Optional

from listener_head_ros.data.feature_cache import prepare_cache
from listener_head_ros.data.react2025 import (
    AUDIO_TOLERANCE_SECONDS, React2025Config, React2025Source, ReleaseError, SPLITS, TARGETS)


def main(argv: Optional[List[str]] = None) -> int:
    """Parse the command line and prepare (or confirm) the feature cache."""
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument('--root', type=Path, required=True,
                        help='the release folder (holding train/, val/, test/)')
    parser.add_argument('--cache', type=Path, required=True, help='output cache folder')
    parser.add_argument('--splits', nargs='+', choices=SPLITS, default=list(SPLITS))
    parser.add_argument('--targets', nargs='+', choices=TARGETS, default=list(TARGETS),
                        help="the listener's streams to store")
    parser.add_argument('--normalise-coefficients', action='store_true',
                        help="store the coefficients normalised with the release's "
                             'mean_face.npy / std_face.npy (for analysis: training refuses '
                             'such a cache, since the node needs raw FaceVerse coefficients)')
    parser.add_argument('--audio-tolerance', type=float, default=AUDIO_TOLERANCE_SECONDS,
                        help='how much shorter (s) than its facial frames a wav may be')
    parser.add_argument('--force', action='store_true', help='rebuild even if up to date')
    parser.add_argument('--no-progress', action='store_true', help='hide the progress bar')
    args = parser.parse_args(argv)
    try:
        config = React2025Config(root=args.root, splits=tuple(args.splits),
                                 targets=tuple(args.targets),
                                 normalise=args.normalise_coefficients,
                                 audio_tolerance_seconds=args.audio_tolerance)
        prepare_cache(React2025Source(config), args.cache, force=args.force,
                      progress=not args.no_progress)
    except ReleaseError as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
