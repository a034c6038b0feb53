"""
Offline evaluation speed, as a multiple of real time, on the CPU.

Generates a synthetic dialog, converts it to a bag, then times the three stages of
``training/evaluate.py --mode offline``: reading the bag, running the model through the node's
loop (:func:`listener_head_ros.eval.simulate.simulate_node`) and scoring. Prints the figures;
never asserts on them::

    python benchmarks/bench_eval.py [--model prosodic|CHECKPOINT] [--bag BAG] [--turns 12]
        [--repeats 3]
"""

import argparse
import os
from pathlib import Path
import sys
import tempfile
import time
from typing import List, Optional

import torch

from listener_head_ros.bags.convert import convert_corpus
from listener_head_ros.data.synthetic_iemocap import generate_corpus, SyntheticConfig
from listener_head_ros.bags.reader import read_bag
from listener_head_ros.eval.offline import offline_listener
from listener_head_ros.eval.scoring import score_trace
from listener_head_ros.eval.simulate import simulate_node


def main(argv: Optional[List[str]] = None) -> int:
    """Time offline evaluation on a synthetic dialog and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument('--model', default=None,
                        help="'prosodic' or a checkpoint (default: config/listener.yaml's)")
    parser.add_argument('--params-file', type=Path, default=None,
                        help='listener parameter file (default: config/listener.yaml)')
    parser.add_argument('--bag', type=Path, default=None,
                        help='time this bag instead of a generated synthetic dialog')
    parser.add_argument('--turns', type=int, default=12, help='turns of the synthetic dialog')
    parser.add_argument('--repeats', type=int, default=3, help='timed runs (best is shown)')
    args = parser.parse_args(argv)
    print(f'load average: {", ".join(f"{v:.2f}" for v in os.getloadavg())} '
          f'({os.cpu_count()} CPUs)')
    with tempfile.TemporaryDirectory() as tmp:
        bag = args.bag
        if bag is None:
            corpus = generate_corpus(Path(tmp) / 'corpus', SyntheticConfig(
                sessions=(1,), dialogs_per_session=1, turns_per_dialog=args.turns))
            bag = convert_corpus(corpus.root, Path(tmp) / 'bags', (1,))[0].path
        timings = {'read': [], 'model loop': [], 'score': []}
        for _ in range(args.repeats):
            start = time.perf_counter()
            contents = read_bag(bag)
            timings['read'].append(time.perf_counter() - start)
            listener = offline_listener(args.params_file, model=args.model)
            start = time.perf_counter()
            trace = simulate_node(contents, listener)
            timings['model loop'].append(time.perf_counter() - start)
            start = time.perf_counter()
            score_trace('offline', trace, contents)
            timings['score'].append(time.perf_counter() - start)
    audio = contents.audio_seconds
    print(f'model {listener.settings.model}, {torch.get_num_threads()} torch thread(s), bag of '
          f'{contents.duration:.1f} s ({audio:.1f} s of audio, '
          f'{len(contents.audio_payloads)} AudioData messages), best of {args.repeats}')
    total = 0.0
    for stage, values in timings.items():
        best = min(values)
        total += best
        print(f'  {stage:<11} {best * 1e3:8.1f} ms   {audio / best:8.1f} x real time')
    print(f'  {"total":<11} {total * 1e3:8.1f} ms   {audio / total:8.1f} x real time')
    return 0


if __name__ == '__main__':
    sys.exit(main())
