#!/usr/bin/env python3
"""
Size training crops from a feature cache: how much of a crop the loss sees, per crop length.

    python training/size_crops.py --cache cache/iemocap --burn-in-frames 90

Prints the cache's utterance and listening-window lengths (frames, percentiles over every
interlocutor utterance), then for each ``--crop-frames`` candidate the shares of a crop's
``burn_in + crop`` frames that are zero padding past a dialog's end and that the loss sees,
over one epoch of :class:`~listener_head_ros.training.dataset.DialogCrops`.  The crop that
gives the loss the most frames per computed frame is marked: each step costs the whole crop,
the loss learns from its listening windows only.
"""

import argparse
import sys

import numpy as np

from listener_head_ros.data.feature_cache import FeatureCache
from listener_head_ros.training.dataset import DialogCrops, load_dialogs

PERCENTILES = (0, 5, 50, 95, 100)


def crop_shares(crops: DialogCrops) -> tuple:
    """Return (padding share, loss share) of the frames of an epoch of ``crops``."""
    padded = seen = 0
    for index in range(len(crops)):
        x, _, mask, _ = crops[index]
        padded += int((x == 0).all(dim=1).sum())
        seen += int(mask.any(dim=1).sum())
    total = len(crops) * crops.length
    return padded / total, seen / total


def main() -> int:
    """Print the length statistics and the candidate crops' shares."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[1])
    parser.add_argument('--cache', required=True, help='feature cache (prepare_iemocap.py)')
    parser.add_argument('--groups', nargs='+', help='groups to measure (default: all)')
    parser.add_argument('--burn-in-frames', type=int, default=90)
    parser.add_argument('--crop-frames', type=int, nargs='+',
                        default=[60, 90, 120, 150, 200, 300])
    args = parser.parse_args()
    cache = FeatureCache(args.cache)
    data = load_dialogs(cache, args.groups or cache.groups, ('head',))
    segments = [s for info in data.infos for s in info.segments]
    for name, lengths in (('utterance', [s.end - s.start for s in segments]),
                          ('listening window', [s.window_end - s.start for s in segments])):
        values = ', '.join(f'p{p} {v:.0f}' for p, v in zip(
            PERCENTILES, np.percentile(lengths, PERCENTILES)))
        print(f'{name} frames over {len(segments)} utterances: {values}')
    windows = sum(int(w.sum()) for w in data.windows) / data.n_frames
    print(f'dialogs: {len(data)}, median {np.median([len(f) for f in data.features]):.0f} '
          f'frames; listening windows hold {windows:.0%} of the frames')
    rows = [(crop, *crop_shares(DialogCrops(data, crop, args.burn_in_frames)))
            for crop in args.crop_frames]
    best = max(rows, key=lambda row: row[2])[0]
    print(f'crop_frames  padding  loss sees  (burn_in_frames {args.burn_in_frames})')
    for crop, padding, seen in rows:
        print(f'{crop:>11}  {padding:>7.0%}  {seen:>9.0%}' + ('  <- most' if crop == best else ''))
    return 0


if __name__ == '__main__':
    sys.exit(main())
