#!/usr/bin/env python3
"""
Train a learned listener on a feature cache: one fresh model per fold of the corpus's split.

    python training/train.py --config config/training/iemocap_gru.yaml \
        --cache cache/iemocap --out runs/gru
    torchrun --nproc_per_node 4 training/train.py --config ...   # several GPUs (DDP)

IEMOCAP is split leave-one-session-out, a corpus with a fixed split trains once. Each fold's
node-loadable checkpoint lands in ``<out>/fold<name>/checkpoint``; its figures (protocol,
listening window and tail; batched, through the node's streaming path and for the neutral
pose; the floor ratio on synthetic corpora, see docs/metrics.md) in ``metrics.json`` there,
and every fold's and the overall ones in ``<out>/results.json``. Re-running the same command
resumes; Ctrl-C (or SIGTERM) saves the state after the step in progress and prints that
command. A run continues only with the settings it trained with: other steps, learning rate,
model, crops or data are refused (change freely only where it logs, saves, scores and runs, or
which folds). ``--folds`` trains no final model unless ``--final-model`` is given.
"""

import argparse
import json
import sys

from listener_head_ros.training.config import ConfigError, TrainConfig
from listener_head_ros.training.interruption import exit_on_interrupt
from listener_head_ros.training.trainer import cross_validation, TrainingDiverged


def main() -> int:
    """Parse the command line, train, and print the cross-validation summary."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[1])
    parser.add_argument('--config', required=True, help='training YAML (config/training/)')
    parser.add_argument('--cache', help='feature cache (overrides cache_dir)')
    parser.add_argument('--out', help='output directory (overrides out_dir)')
    parser.add_argument('--steps', type=int, help='training steps per fold (overrides steps)')
    parser.add_argument('--folds', nargs='+', help='held-out groups to run (IEMOCAP: sessions)')
    parser.add_argument('--final-model', action=argparse.BooleanOptionalAction,
                        help="train the final model on all groups (default: the config's "
                             'final_model, or no with --folds)')
    parser.add_argument('--device', help='auto, cpu or cuda')
    args = parser.parse_args()
    final_model = False if args.folds and args.final_model is None else args.final_model
    try:
        config = TrainConfig.from_yaml(args.config, cache_dir=args.cache, out_dir=args.out,
                                       steps=args.steps, folds=args.folds, device=args.device,
                                       final_model=final_model)
        results = cross_validation(config)
    except (ConfigError, ValueError, FileNotFoundError) as error:
        print(f'train.py: {error}', file=sys.stderr)
        return 2
    except TrainingDiverged as error:
        print(f'train.py: {error}', file=sys.stderr)
        return 1
    if results:
        overall = results['cross_validation']
        keys = ('figures', 'floor_ratio', 'streaming_over_model')
        print(json.dumps({key: overall[key] for key in keys if key in overall}, indent=2))
    return 0


if __name__ == '__main__':
    sys.exit(exit_on_interrupt('train.py', main))
