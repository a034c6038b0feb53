r"""
Evaluate a facial listener model on a REACT 2025 release: predictions, metrics and a report.

Examples::

    python training/evaluate_react.py --checkpoint runs/react/fold0 --root /data/react2025 \
        --out /tmp/react_eval --split test --samples 10 --task both
    python training/evaluate_react.py --predictions /tmp/mine --root /data/react2025 \
        --out /tmp/react_mine

With ``--checkpoint`` it writes ``predictions/<task>/`` (the documented predictions format,
docs/metrics.md section 2.3) for each task, then scores them; with ``--predictions`` it scores
a directory in that format. Either way it writes ``metrics.json``, ``summary.md`` and the plots
of :mod:`listener_head_ros.eval.react_report` into ``--out`` and prints the tables. Bad input
(paths, a checkpoint without facial targets, predictions of the wrong shape) exits with 2.
"""

from __future__ import annotations

import argparse
from pathlib import Path
import sys
import time
from typing import Dict, List, Optional

from listener_head_ros.data.react2025 import scan_release, SPLITS
from listener_head_ros.eval.react_eval import (
    DEFAULT_SAMPLES, evaluate, facial_model, GenerationConfig, Predictions, predict_split,
    read_predictions, ScoreConfig, TASKS, write_predictions)
from listener_head_ros.eval.react_report import EXAMPLE_CLIPS, table_markdown, write_react_report

TRAIN_SPLIT = 'train'  # the split whose mean listener is the Neutral row
SPREAD_REFERENCES = ('GT', 'Oracle')  # reference rows drawn beside the predictions' spread


def _parser() -> argparse.ArgumentParser:
    defaults = ScoreConfig()
    parser = argparse.ArgumentParser(
        description='Evaluate a facial listener model (or a predictions directory) on a '
                    'REACT 2025 release: REACT metrics in challenge and corrected modes, '
                    'reference rows and a report.')
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument('--checkpoint', type=Path, help='a learned facial checkpoint')
    source.add_argument('--predictions', type=Path,
                        help='score this predictions directory instead of a checkpoint')
    parser.add_argument('--root', type=Path, required=True, help='the release root')
    parser.add_argument('--out', type=Path, required=True, help='the output directory')
    parser.add_argument('--split', choices=SPLITS, default='test')
    parser.add_argument('--samples', type=int, default=DEFAULT_SAMPLES)
    parser.add_argument('--task', choices=TASKS + ('both',), default='both')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--temperature', type=float, default=1.0)
    parser.add_argument('--noise-correlation', type=float,
                        help="AR(1) correlation of the sampling noise between frames, 0..1 "
                             "(default: the checkpoint's): higher keeps each sample one "
                             'coherent reaction')
    parser.add_argument('--appropriate-size', type=int, default=defaults.appropriate_size)
    parser.add_argument('--dtw-band-seconds', type=float, default=defaults.dtw_band_seconds,
                        help='Sakoe-Chiba band of the FRD DTW; 0 for the full DTW')
    return parser


def _predictions(args: argparse.Namespace, release) -> Dict[str, Predictions]:
    """Return the predictions to score, by row name; write them when made here."""
    if args.predictions is not None:
        predictions = read_predictions(args.predictions)
        return {predictions.task or 'predictions': predictions}
    from listener_head_ros.models.checkpoint import load_listener_model
    if not args.checkpoint.is_dir():
        raise FileNotFoundError(f'checkpoint directory {args.checkpoint} does not exist')
    model = facial_model(load_listener_model(str(args.checkpoint)), str(args.checkpoint))
    out: Dict[str, Predictions] = {}
    for task in (TASKS if args.task == 'both' else (args.task,)):
        config = GenerationConfig(task, args.samples, args.seed, args.temperature,
                                  args.noise_correlation)
        start = time.perf_counter()
        out[task] = predict_split(model, release, args.split, config)
        where = write_predictions(args.out / 'predictions' / task, out[task])
        print(f'{task}: {len(out[task].clips)} clips in {time.perf_counter() - start:.1f} s '
              f'-> {where}')
    return out


def main(argv: Optional[List[str]] = None) -> int:
    """Run the evaluation from the command line; return a process exit code."""
    args = _parser().parse_args(argv)
    try:
        config = ScoreConfig(args.appropriate_size, dtw_band_seconds=(
            args.dtw_band_seconds or None))
        splits = [args.split] + ([TRAIN_SPLIT] if args.split != TRAIN_SPLIT
                                 and (args.root / TRAIN_SPLIT).is_dir() else [])
        release = scan_release(args.root, splits=splits)
        predicted = _predictions(args, release)
        result = evaluate(predicted, release, config, TRAIN_SPLIT)
        keys = result.metrics['clips'][:EXAMPLE_CLIPS]
        shown = list(predicted) + [r for r in SPREAD_REFERENCES if r in result.samples]
        examples = {name: result.samples[name][:len(keys)] for name in shown}
        out = write_react_report(args.out, result.metrics, examples,
                                 result.data.paired[:len(keys)], keys)
    except (ValueError, OSError, RuntimeError) as error:  # also Release/Predictions/Checkpoint
        print(f'evaluate_react: {type(error).__name__}: {error}', file=sys.stderr)
        return 2
    print(table_markdown(result.metrics['rows']))
    print(f'report: {out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
