"""
Benchmark the learned facial-reaction networks: live sampling step, offline sampling speed.

Random-weight networks of the deployed default sizes (untrained weights cost the same as
trained ones) predicting ``facial_attributes`` and ``coefficients`` (83 columns), behind
:class:`~listener_head_ros.models.learned.TorchListenerModel` in ``mode='sample'``:

live
    ``model.step(hop)`` with one sample over ``--steps`` real-time hops of speech (features
    included), on ``--threads`` torch threads: p50/p99 per frame of wall time (target p99 <= 5
    ms on one thread) and of this thread's CPU time (what the step costs without the waits
    that other work on a shared machine adds); back to back, or with ``--paced`` at the hops'
    real-time deadlines, as the node steps.
offline
    ``--samples`` samples per frame over ``--seconds`` of audio, on each of
    ``--offline-threads``: seconds of audio per second of compute (x real time, target >= 100)
    without features (``model.predict`` on the feature rows), with features (feature extraction
    then ``model.predict``: audio to samples) and of ``model.run(audio)`` (audio to listener
    frames, which adds the per-frame face and head mapping); and of the extraction alone.
few-step vs 50-step
    ``causal_gru_flow``'s default sampler against a 50-step sampler with the same weights, in
    the same run: the time ratio of ``predict`` (context encoder included) and of the sampler
    alone (``draw`` on the same network outputs and noise), and the samples' RMS gap.
cuda
    The offline figures without features on the GPU, when ``torch.cuda.is_available()``;
    otherwise one line says there is no device.

It prints numbers and never fails on them. On a shared machine, run it with
``OMP_WAIT_POLICY=PASSIVE``: with the default (spinning) policy, a second OpenMP thread that
waits for a core other work holds makes each small parallel region of the GRU wait a scheduler
slice, and 2 threads can run hundreds of times slower than one. Example::

    OMP_WAIT_POLICY=PASSIVE python benchmarks/bench_face.py --steps 3000 --seconds 60
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
from pathlib import Path
import sys
import time
from typing import Any, Dict, List, Optional

from bench_models import best_seconds, load_speech, looped, SPEECH
import numpy as np
import torch

from listener_head_ros.features import extract_features, FeatureConfig
from listener_head_ros.models.frame_features import feature_matrix
from listener_head_ros.models.learned import InferenceConfig, TorchListenerModel
from listener_head_ros.models.networks import build_network, count_parameters
from listener_head_ros.streams import COEFFICIENTS, FACIAL_ATTRIBUTES, total_dim

TARGETS = (FACIAL_ATTRIBUTES.name, COEFFICIENTS.name)
MODELS = ('causal_gru_flow', 'causal_gru_mdn')
REFERENCE_STEPS = 50  # the many-step sampler the few-step one is compared with
NOISE_CORRELATION = 0.9
TARGET_P99_MS = 5.0
TARGET_REAL_TIME = 100.0


def build(name: str, **settings: Any) -> torch.nn.Module:
    """Return the network ``name`` of default size for the 83 face columns, seeded weights."""
    torch.manual_seed(0)
    return build_network(name, {'output_dim': total_dim(TARGETS), **settings})


def sampler(network: torch.nn.Module, samples: int, device: str = 'cpu') -> TorchListenerModel:
    """Return ``network`` behind a listener model that draws ``samples`` reactions per frame."""
    inference = InferenceConfig(mode='sample', num_samples=samples,
                                noise_correlation=NOISE_CORRELATION)
    return TorchListenerModel(network, inference=inference, device=device, targets=TARGETS)


def live(model: TorchListenerModel, audio: np.ndarray, steps: int, paced: bool = False,
         warmup: int = 50) -> Dict[str, float]:
    """
    Return p50/p99 wall and CPU (this thread) ms of ``model.step`` over ``steps`` hops.

    Back to back by default; ``paced`` starts each step at its hop's real-time deadline, as
    the node does, so the thread sleeps between steps instead of always being runnable.
    """
    hop = model.hop_length
    period = hop / model.sample_rate
    samples = looped(audio, (steps + warmup) * hop)
    model.reset()
    wall, cpu = np.empty(steps), np.empty(steps)
    origin = time.perf_counter()
    for i in range(warmup + steps):
        if paced:
            time.sleep(max(0.0, origin + i * period - time.perf_counter()))
        chunk = samples[i * hop:(i + 1) * hop]
        start, start_cpu = time.perf_counter(), time.thread_time()
        model.step(chunk)
        if i >= warmup:
            wall[i - warmup] = time.perf_counter() - start
            cpu[i - warmup] = time.thread_time() - start_cpu
    (p50, p99), (cpu50, cpu99) = (np.percentile(t, [50, 99]) * 1e3 for t in (wall, cpu))
    return {'steps': steps, 'paced': paced, 'p50_ms': float(p50), 'p99_ms': float(p99),
            'cpu_p50_ms': float(cpu50), 'cpu_p99_ms': float(cpu99)}


def offline(model: TorchListenerModel, audio: np.ndarray, rows: np.ndarray, repeats: int,
            with_features: bool = True) -> Dict[str, float]:
    """Return x real time of ``predict(rows)`` and, if asked, with features and of ``run``."""
    seconds = audio.size / model.sample_rate
    out = {'predict_x_real_time': seconds / best_seconds(lambda: model.predict(rows), repeats)}
    if with_features:
        config = model.feature_config
        out['samples_x_real_time'] = seconds / best_seconds(
            lambda: model.predict(feature_matrix(extract_features(audio, config))), repeats)
        out['run_x_real_time'] = seconds / best_seconds(lambda: model.run(audio), repeats)
    return out


def few_vs_many(rows: np.ndarray, samples: int, repeats: int, device: str) -> Dict[str, float]:
    """Compare the default flow sampler with a REFERENCE_STEPS one of the same weights."""
    few = build('causal_gru_flow')
    many = build('causal_gru_flow', sample_steps=REFERENCE_STEPS)
    many.load_state_dict(few.state_dict())
    models = [sampler(network, samples, device) for network in (few, many)]
    seconds = [best_seconds(lambda m=m: m.predict(rows), repeats) for m in models]
    draws = [m.predict(rows).streams for m in models]
    gap = np.sqrt(np.mean([np.mean((draws[0][k] - draws[1][k]) ** 2) for k in TARGETS]))
    with torch.inference_mode():
        outputs = tuple(o[0] for o in models[0].network(torch.from_numpy(rows)[None].to(device)))
        noise = torch.randn(len(rows), samples, few.noise_dim,
                            generator=torch.Generator().manual_seed(0)).to(device)
        # the copy to the CPU waits for the GPU
        solve = [best_seconds(lambda n=n: n.draw(outputs, noise, 1.0).cpu(), repeats)
                 for n in (few, many)]
    return {'few_steps': few.config.sample_steps, 'many_steps': REFERENCE_STEPS,
            'few_seconds': seconds[0], 'many_seconds': seconds[1],
            'speedup': seconds[1] / seconds[0], 'few_draw_seconds': solve[0],
            'many_draw_seconds': solve[1], 'draw_speedup': solve[1] / solve[0],
            'rms_gap': float(gap)}


def report_few_vs_many(compare: Dict[str, float], samples: int, where: str) -> None:
    """Print the few-step against many-step comparison measured on ``where``."""
    print(f"\n{where} flow sampler, {compare['few_steps']} vs {compare['many_steps']} midpoint "
          f"steps, same weights, {samples} samples, features excluded: predict "
          f"{compare['few_seconds']:.3f} s vs {compare['many_seconds']:.3f} s "
          f"({compare['speedup']:.1f}x faster), sampler alone {compare['few_draw_seconds']:.3f} "
          f"s vs {compare['many_draw_seconds']:.3f} s ({compare['draw_speedup']:.1f}x faster); "
          f"RMS sample gap {compare['rms_gap']:.4f}")


def thread_counts(text: str) -> List[int]:
    """Return the comma-separated positive thread counts of ``--offline-threads``."""
    try:
        counts = [int(n) for n in text.split(',') if n.strip()]
    except ValueError:
        counts = []
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f'need positive integers like 1,2, not {text!r}')
    return counts


def main(argv: Optional[List[str]] = None) -> int:
    """Run the benchmark and print (and optionally save) the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[1])
    parser.add_argument('--steps', type=int, default=3000, help='live hops per model')
    parser.add_argument('--seconds', type=float, default=60.0, help='offline audio length')
    parser.add_argument('--samples', type=int, default=10, help='offline samples per frame')
    parser.add_argument('--repeats', type=int, default=3, help='timed repeats, best kept')
    parser.add_argument('--threads', type=int, default=1, help='torch threads, live step')
    parser.add_argument('--paced', action='store_true',
                        help='live steps at real-time deadlines (steps / 30 s), not back to back')
    parser.add_argument('--offline-threads', type=thread_counts, default=[1, 2],
                        help='torch threads of the offline figures, comma-separated')
    parser.add_argument('--flow-steps', type=int, default=None,
                        help="the flow's sample_steps in the main table (default: its config)")
    parser.add_argument('--models', default=','.join(MODELS))
    parser.add_argument('--audio', type=Path, default=SPEECH)
    parser.add_argument('--json', type=Path, default=None)
    args = parser.parse_args(argv)
    config = FeatureConfig()
    speech = load_speech(args.audio, config.sample_rate)
    audio = looped(speech, int(args.seconds * config.sample_rate))
    rows = feature_matrix(extract_features(audio, config))
    names = [n for n in args.models.split(',') if n]
    threads = args.offline_threads
    print(f'torch {torch.__version__}, {args.threads} thread(s) live'
          f'{" (paced)" if args.paced else ""}, {threads} offline '
          f'({args.samples} samples), OMP_WAIT_POLICY {os.environ.get("OMP_WAIT_POLICY")}, '
          f'load average {os.getloadavg()[0]:.2f}; targets {"+".join(TARGETS)} '
          f'({total_dim(TARGETS)} columns), {args.seconds:g} s of audio ({len(rows)} frames)')
    settings = vars(args) | {'audio': str(args.audio), 'json': str(args.json)}
    features = args.seconds / best_seconds(lambda: extract_features(audio, config), args.repeats)
    results: Dict[str, Any] = {'settings': settings, 'models': {},
                               'features_x_real_time': features}
    print(f'feature extraction alone (numpy): {features:.0f}x real time')
    print(f"\n{'model':<18}{'params':>10}{'live p50/p99 ms':>17}{'CPU p50/p99 ms':>16}"
          f"{'threads':>9}{'x RT -feat':>12}{'x RT +feat':>12}{'x RT run':>10}")
    for name in names:
        steps = {'sample_steps': args.flow_steps} if args.flow_steps else {}
        network = build(name, **(steps if name == 'causal_gru_flow' else {}))
        torch.set_num_threads(args.threads)
        step = live(sampler(network, 1), speech, args.steps, args.paced)
        batch = {}
        for n in threads:
            torch.set_num_threads(n)
            batch[n] = offline(sampler(network, args.samples), audio, rows, args.repeats)
        results['models'][name] = {'parameters': count_parameters(network), 'live': step,
                                   'offline': batch,
                                   'config': dataclasses.asdict(network.config)}
        for i, n in enumerate(threads):
            head = (f"{name:<18}{count_parameters(network):>10,}"
                    f"{step['p50_ms']:>8.2f} /{step['p99_ms']:>6.2f}"
                    f"{step['cpu_p50_ms']:>8.2f} /{step['cpu_p99_ms']:>5.2f}") if i == 0 else ''
            print(f"{head:<61}{n:>9}{batch[n]['predict_x_real_time']:>12.1f}"
                  f"{batch[n]['samples_x_real_time']:>12.1f}{batch[n]['run_x_real_time']:>10.1f}")
    print(f'targets: live p99 <= {TARGET_P99_MS:g} ms, offline >= {TARGET_REAL_TIME:g}x; '
          f'+feat: features then predict (audio to samples); run: audio to listener frames')
    torch.set_num_threads(threads[0])
    if 'causal_gru_flow' in names:
        results['few_vs_many'] = compare = few_vs_many(rows, args.samples, args.repeats, 'cpu')
        report_few_vs_many(compare, args.samples, f'CPU ({threads[0]} thread(s))')
    if not torch.cuda.is_available():
        print('\nCUDA: no device')
    else:
        cuda: Dict[str, Any] = {'device': torch.cuda.get_device_name(0)}
        for name in names:
            cuda[name] = offline(sampler(build(name), args.samples, 'cuda'), audio, rows,
                                 args.repeats, with_features=False)
            print(f"\nCUDA {cuda['device']}, {name}: {cuda[name]['predict_x_real_time']:.1f}x "
                  f'real time, features excluded')
        if 'causal_gru_flow' in names:
            cuda['few_vs_many'] = compare = few_vs_many(rows, args.samples, args.repeats,
                                                        'cuda')
            report_few_vs_many(compare, args.samples, f"CUDA {cuda['device']}")
        results['cuda'] = cuda
    results['load_average_end'] = os.getloadavg()[0]
    print(f"\nload average at the end {results['load_average_end']:.2f}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == '__main__':
    sys.exit(main())
