#!/usr/bin/env python3
"""
Train a learned listener with leave-one-session-out cross-validation.

    python training/train.py --config config/training/iemocap_gru.yaml \
        --cache cache/iemocap --out runs/gru
    torchrun --nproc_per_node 4 training/train.py --config ...   # several GPUs (DDP)

Each fold's node-loadable checkpoint lands in ``<out>/fold<N>/checkpoint``; the metrics of every
fold and overall in ``<out>/results.json``. Re-running the same command resumes.
"""

import argparse
import json
import sys

from listener_head_ros.training.config import ConfigError, TrainConfig
from listener_head_ros.training.trainer import cross_validation


def main() -> int:
    """Parse the command line, train, and print the cross-validation summary."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[1])
    parser.add_argument('--config', required=True, help='training YAML (config/training/)')
    parser.add_argument('--cache', help='feature cache (overrides cache_dir)')
    parser.add_argument('--out', help='output directory (overrides out_dir)')
    parser.add_argument('--steps', type=int, help='training steps per fold (overrides steps)')
    parser.add_argument('--folds', type=int, nargs='+', help='test sessions to run')
    parser.add_argument('--device', help='auto, cpu or cuda')
    args = parser.parse_args()
    try:
        config = TrainConfig.from_yaml(args.config, cache_dir=args.cache, out_dir=args.out,
                                       steps=args.steps, folds=args.folds, device=args.device)
        results = cross_validation(config)
    except (ConfigError, ValueError, FileNotFoundError) as error:
        print(f'train.py: {error}', file=sys.stderr)
        return 2
    if results:
        print(json.dumps(results['cross_validation'], indent=2))
    return 0


if __name__ == '__main__':
    sys.exit(main())
