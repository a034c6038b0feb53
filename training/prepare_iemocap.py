"""
Prepare the IEMOCAP feature cache once: ``python training/prepare_iemocap.py --iemocap-root ...``.

Thin command line over :class:`listener_head_ros.data.iemocap.IemocapSource` and
:func:`listener_head_ros.data.feature_cache.prepare_cache`; the cache format is described in
``docs/data_format.md``.
"""

import argparse
from pathlib import Path
import sys
from typing import List, Optional

from listener_head_ros.data.feature_cache import prepare_cache
from listener_head_ros.data.iemocap import (
    DEFAULT_SPEAKER_CHANNEL, IemocapConfig, IemocapSource, SESSIONS, SPEAKER_CHANNELS)
from listener_head_ros.data.windows import DEFAULT_TAIL_SECONDS
from listener_head_ros.roles import LISTENING, ROLES


def main(argv: Optional[List[str]] = None) -> int:
    """Parse the command line and prepare (or confirm) the feature cache."""
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument('--iemocap-root', type=Path, required=True,
                        help='IEMOCAP_full_release (or its parent folder)')
    parser.add_argument('--cache', type=Path, required=True, help='output cache folder')
    parser.add_argument('--role', choices=ROLES, default=LISTENING,
                        help="'listener': the interlocutor's speech in, the marker wearer's "
                             "head out (the node's model); 'speaker': the wearer's own speech "
                             "in, its own head out (the node's speaking_model) (default "
                             f'{LISTENING})')
    parser.add_argument('--speaker-channel', choices=SPEAKER_CHANNELS,
                        default=DEFAULT_SPEAKER_CHANNEL,
                        help=f"audio channel: 'speaker' (the heard actor's channel: the "
                             f"interlocutor's, or the wearer's own with --role speaker; female "
                             f"on --female-channel), 'mix', 'left' or 'right' (default "
                             f"{DEFAULT_SPEAKER_CHANNEL}, as training/make_bag.py)")
    parser.add_argument('--female-channel', choices=('left', 'right'), default='left')
    parser.add_argument('--max-gap', type=float, default=0.25,
                        help='longest mocap NaN gap (s) to interpolate; longer ones make '
                             'frames invalid')
    parser.add_argument('--tail-seconds', type=float, default=DEFAULT_TAIL_SECONDS,
                        help='longest listening-window tail after an utterance (s)')
    parser.add_argument('--asr-latency', type=float, default=IemocapConfig.asr_latency,
                        help='seconds from the end of the words to their simulated live '
                             'recognition result (the transcripts the text inputs train on)')
    parser.add_argument('--no-incremental-asr', action='store_true',
                        help='simulate a recogniser that publishes final results only')
    parser.add_argument('--sessions', type=int, nargs='+', default=list(SESSIONS))
    parser.add_argument('--force', action='store_true', help='rebuild even if up to date')
    parser.add_argument('--no-progress', action='store_true', help='hide the progress bar')
    args = parser.parse_args(argv)
    config = IemocapConfig(role=args.role, speaker_channel=args.speaker_channel,
                           female_channel=args.female_channel, max_gap_seconds=args.max_gap,
                           tail_seconds=args.tail_seconds, asr_latency=args.asr_latency,
                           incremental_asr=not args.no_incremental_asr)
    try:
        prepare_cache(IemocapSource(args.iemocap_root, config, args.sessions), args.cache,
                      force=args.force, progress=not args.no_progress)
    except FileNotFoundError as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
