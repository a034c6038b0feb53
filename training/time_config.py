#!/usr/bin/env python3
"""
Estimate a training config's CPU time: time a few of its steps, scale to the whole run.

    python training/time_config.py --config config/training/iemocap_gru.yaml \
        --cache cache/iemocap --steps 20 --cores 2

Trains the config's network (its model, batch and crops) for ``--steps`` steps on the first
fold's training dialogs, on the CPU with one torch thread, in a scratch directory, and reads
the CPU time of a step from its log.csv, kept on the process's CPU clock: the median step
after the first ``--skip`` (start-up).  CPU time, unlike wall time, does not count what other
jobs on a busy machine take.  The estimate is that time times the config's steps and the
networks it trains (IEMOCAP: 5 folds and the final model, ``--networks``), over ``--cores``
cores busy with it.
"""

import argparse
from pathlib import Path
import sys
import tempfile
import time

import numpy as np
import torch

from listener_head_ros.data.feature_cache import FeatureCache
from listener_head_ros.training import trainer
from listener_head_ros.training.config import TrainConfig
from listener_head_ros.training.dataset import load_dialogs


def seconds_per_step(config: TrainConfig, steps: int, skip: int) -> float:
    """Return the median time on ``trainer.clock`` of ``steps`` of the config's steps."""
    cache = FeatureCache(Path(config.cache_dir))
    fold = cache.split.restrict(config.groups).folds(config.folds)[0]
    data = load_dialogs(cache, fold.train, config.targets)
    with tempfile.TemporaryDirectory() as scratch:
        timed = TrainConfig.from_dict({**config.to_dict(), 'out_dir': scratch,
                                       'steps': skip + steps, 'log_every': 1,
                                       'checkpoint_every': skip + steps})
        trainer.train_network(timed, data, Path(scratch) / 'fold', timed.seed,
                              trainer.Distributed())
        rows = (Path(scratch) / 'fold' / 'log.csv').read_text().splitlines()[1:]
    seconds = [float(row.split(',')[3]) for row in rows]
    return float(np.median(np.diff(seconds[skip - 1:])))


def main() -> int:
    """Time the steps on the CPU and print the estimate for the whole run."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[1])
    parser.add_argument('--config', required=True, help='training YAML (config/training/)')
    parser.add_argument('--cache', required=True, help='feature cache to train on')
    parser.add_argument('--steps', type=int, default=20, help='steps to time')
    parser.add_argument('--skip', type=int, default=3, help='first steps left out')
    parser.add_argument('--networks', type=int, default=6,
                        help='networks the run trains (IEMOCAP: 5 folds + final model)')
    parser.add_argument('--cores', type=int, default=2, help='CPU cores the run would use')
    args = parser.parse_args()
    config = TrainConfig.from_yaml(args.config, cache_dir=args.cache, out_dir='unused',
                                   device='cpu')
    torch.set_num_threads(1)
    trainer.clock = time.process_time
    step = seconds_per_step(config, args.steps, args.skip)
    network = step * config.steps / args.cores
    print(f'{Path(args.config).name}: {step:.3f} CPU-s per step; {config.steps} steps on '
          f'{args.cores} cores = {network / 60:.0f} min a network, '
          f'{network * args.networks / 3600:.1f} h for {args.networks}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
