"""
Benchmark the listener models: streaming step time per frame and offline batch throughput.

For each model (the embedded ``prosodic`` model and the learned ``causal_active_listener`` and
``causal_gru_mdn`` networks in their default configurations, with untrained weights, which
cost the same as trained ones):

streaming
    ``model.step(hop)`` over ``--frames`` consecutive hops of speech on the CPU, the node's
    path (audio -> causal features -> network state update): p50/p99 per frame and the
    real-time factor, p50 / frame period (target <= 0.05).
offline
    Frames per second on the CPU over ``--batch`` clips of ``--seconds`` seconds: the network
    forward on one ``(B, T, F)`` batch (network only); :meth:`TorchListenerModel.predict` on
    each ``(T, F)`` matrix (the evaluation path); feature extraction alone; features then the
    batched network; and ``model.run(audio)`` per clip (the export path: audio -> poses).
    The same network forward on the GPU when CUDA is available, in float32 and bf16.

Throughputs are compared with Active Listener's reported 18,490 frames/s (GPU, MFCC model).
This is a benchmark, not a test: it prints numbers and never fails on them. Example::

    python benchmarks/bench_models.py --frames 500 --batch 16 --seconds 10 --threads 2
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
import platform
import sys
import time
from typing import Any, Callable, Dict, List, Optional

import numpy as np
import soundfile
import torch

from listener_head_ros.features import extract_features, FeatureConfig
from listener_head_ros.models.frame_features import feature_matrix
from listener_head_ros.models.learned import TorchListenerModel
from listener_head_ros.models.networks import build_network, count_parameters
from listener_head_ros.models.prosodic import ProsodicListener

REPO = Path(__file__).resolve().parents[1]
SPEECH = REPO / 'listener_head_ros' / 'data' / 'speech_en.wav'
ACTIVE_LISTENER_FPS = 18490.0  # Active Listener's reported throughput (GPU, MFCC model)
TARGET_RTF = 0.05
MODELS = ('prosodic', 'causal_active_listener', 'causal_gru_mdn')


def load_speech(path: Path, sample_rate: int) -> np.ndarray:
    """Return ``path`` as mono float32 at ``sample_rate``."""
    audio, rate = soundfile.read(str(path), dtype='float32', always_2d=True)
    if rate != sample_rate:
        raise SystemExit(f'{path} is at {rate} Hz; the models expect {sample_rate} Hz')
    return audio.mean(axis=1)


def looped(audio: np.ndarray, samples: int, offset: int = 0) -> np.ndarray:
    """Return ``samples`` samples of ``audio`` repeated, starting at ``offset``."""
    reps = (offset + samples) // audio.size + 1
    return np.tile(audio, reps)[offset:offset + samples]


def build_model(name: str) -> Any:
    """Return the streaming model ``name`` with default settings on the CPU."""
    if name == 'prosodic':
        return ProsodicListener(frame_rate=FeatureConfig().frame_rate)
    torch.manual_seed(0)
    return TorchListenerModel(build_network(name), FeatureConfig(), device='cpu')


def bench_streaming(model: Any, audio: np.ndarray, frames: int,
                    warmup: int = 50) -> Dict[str, float]:
    """Time ``model.step`` per hop over ``frames`` hops after ``warmup`` untimed ones."""
    hop = model.hop_length
    samples = looped(audio, (frames + warmup) * hop)
    model.reset()
    times = np.empty(frames)
    for i in range(warmup + frames):
        chunk = samples[i * hop:(i + 1) * hop]
        start = time.perf_counter()
        model.step(chunk)
        if i >= warmup:
            times[i - warmup] = time.perf_counter() - start
    p50, p99 = np.percentile(times, [50, 99]) * 1e3
    period_ms = 1e3 / model.frame_rate
    return {'frames': frames, 'p50_ms': float(p50), 'p99_ms': float(p99),
            'mean_ms': float(times.mean() * 1e3), 'frame_period_ms': period_ms,
            'rtf_p50': float(p50 / period_ms), 'rtf_p99': float(p99 / period_ms)}


def best_seconds(run: Callable[[], Any], repeats: int) -> float:
    """Return the fastest of ``repeats`` timed calls of ``run`` (after one untimed call)."""
    run()
    best = float('inf')
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def bench_offline(name: str, model: Any, clips: List[np.ndarray],
                  repeats: int) -> Dict[str, Any]:
    """Return offline frames/s on the CPU for the model ``name``."""
    cfg = FeatureConfig()
    matrices = [feature_matrix(extract_features(c, cfg)) for c in clips]
    n_frames = sum(len(m) for m in matrices)
    out: Dict[str, Any] = {'clips': len(clips), 'frames': n_frames}
    features_s = best_seconds(lambda: [feature_matrix(extract_features(c, cfg)) for c in clips],
                              repeats)
    out['features_only_fps'] = n_frames / features_s
    if name == 'prosodic':
        out['run_audio_fps'] = n_frames / best_seconds(
            lambda: [model.run(c) for c in clips], max(1, repeats - 1))
        return out
    network = model.network
    batch = torch.from_numpy(np.stack(matrices))
    with torch.inference_mode():
        network_s = best_seconds(lambda: network(batch), repeats)
    out['network_fps'] = n_frames / network_s
    out['features_plus_network_fps'] = n_frames / (features_s + network_s)
    out['predict_fps'] = n_frames / best_seconds(
        lambda: [model.predict(m) for m in matrices], repeats)
    out['run_audio_fps'] = n_frames / best_seconds(lambda: [model.run(c) for c in clips],
                                                   repeats)
    return out


def bench_gpu(name: str, clips: List[np.ndarray], repeats: int) -> Optional[Dict[str, Any]]:
    """Return the network forward's frames/s on CUDA (float32 and bf16), or None without CUDA."""
    if name == 'prosodic' or not torch.cuda.is_available():
        return None
    cfg = FeatureConfig()
    batch = torch.from_numpy(np.stack([feature_matrix(extract_features(c, cfg))
                                       for c in clips])).cuda()
    torch.manual_seed(0)
    network = build_network(name).cuda().eval()
    n_frames = batch.shape[0] * batch.shape[1]
    out: Dict[str, Any] = {'device': torch.cuda.get_device_name(0), 'frames': n_frames}
    for label, dtype in (('fp32', None), ('bf16', torch.bfloat16)):
        def forward() -> None:
            with torch.inference_mode(), torch.autocast('cuda', dtype=dtype or torch.float32,
                                                        enabled=dtype is not None):
                network(batch)
            torch.cuda.synchronize()
        out[f'network_{label}_fps'] = n_frames / best_seconds(forward, repeats)
    return out


def _fps(value: Optional[float]) -> str:
    return '-' if value is None else f'{value:,.0f}'


def _ratio(value: Optional[float]) -> str:
    return '-' if value is None else f'{value / ACTIVE_LISTENER_FPS:.2f}x'


def print_report(results: Dict[str, Any]) -> None:
    """Print the streaming and throughput tables."""
    env = results['environment']
    print(f"\ntorch {env['torch']} on {env['cpu']} ({env['cpu_count']} CPUs, "
          f"{env['torch_threads']} torch threads), load average {env['load_average']}")
    print(f"\nStreaming on the CPU, model.step(hop) per frame "
          f"({results['settings']['frames']} frames; target RTF <= {TARGET_RTF}):")
    print(f"{'model':<24}{'params':>10}{'p50 ms':>9}{'p99 ms':>9}{'RTF p50':>9}  verdict")
    for name, r in results['models'].items():
        s = r['streaming']
        verdict = 'ok' if s['rtf_p50'] <= TARGET_RTF else 'over target'
        print(f"{name:<24}{r['parameters']:>10,}{s['p50_ms']:>9.3f}{s['p99_ms']:>9.3f}"
              f"{s['rtf_p50']:>9.4f}  {verdict}")
    settings = results['settings']
    print(f"\nOffline throughput on the CPU, frames/s ({settings['batch']} clips x "
          f"{settings['seconds']:g} s; ratio to Active Listener's {ACTIVE_LISTENER_FPS:,.0f} "
          f"frames/s on a GPU):")
    print(f"{'model':<24}{'network':>11}{'ratio':>8}{'feat+net':>11}{'ratio':>8}"
          f"{'predict':>11}{'run(audio)':>12}{'features':>11}")
    for name, r in results['models'].items():
        o = r['offline']
        print(f"{name:<24}{_fps(o.get('network_fps')):>11}{_ratio(o.get('network_fps')):>8}"
              f"{_fps(o.get('features_plus_network_fps')):>11}"
              f"{_ratio(o.get('features_plus_network_fps')):>8}"
              f"{_fps(o.get('predict_fps')):>11}{_fps(o.get('run_audio_fps')):>12}"
              f"{_fps(o.get('features_only_fps')):>11}")
    gpu = [(n, r['gpu']) for n, r in results['models'].items() if r.get('gpu')]
    if not gpu:
        print('\nGPU: no CUDA device')
    for name, g in gpu:
        print(f"\nGPU {g['device']}, {name}: network fp32 {_fps(g['network_fp32_fps'])} "
              f"({_ratio(g['network_fp32_fps'])}), bf16 {_fps(g['network_bf16_fps'])} "
              f"({_ratio(g['network_bf16_fps'])}) frames/s")


def main(argv: Optional[List[str]] = None) -> int:
    """Run the benchmark and print (and optionally save) the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[1])
    parser.add_argument('--frames', type=int, default=2000,
                        help='streamed frames per model (default 2000)')
    parser.add_argument('--batch', type=int, default=64, help='offline clips (default 64)')
    parser.add_argument('--seconds', type=float, default=30.0,
                        help='length of each offline clip (default 30)')
    parser.add_argument('--repeats', type=int, default=2,
                        help='timed offline repeats, best kept (default 2)')
    parser.add_argument('--threads', type=int,
                        help='torch.set_num_threads (default: torch default)')
    parser.add_argument('--models', default=','.join(MODELS),
                        help=f'comma-separated subset of {",".join(MODELS)}')
    parser.add_argument('--audio', type=Path, default=SPEECH, help='16 kHz speech to loop')
    parser.add_argument('--json', type=Path, help='also write every figure to this file')
    args = parser.parse_args(argv)
    names = [n for n in args.models.split(',') if n]
    unknown = sorted(set(names) - set(MODELS))
    if unknown or args.frames < 1 or args.batch < 1 or args.seconds <= 0 or args.repeats < 1:
        parser.error(f'bad settings (unknown models {unknown})' if unknown else
                     'frames, batch and repeats must be >= 1 and seconds > 0')
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = FeatureConfig()
    speech = load_speech(args.audio, cfg.sample_rate)
    clip_samples = int(round(args.seconds * cfg.sample_rate))
    step = max(1, speech.size // args.batch)
    clips = [looped(speech, clip_samples, i * step) for i in range(args.batch)]
    results: Dict[str, Any] = {
        'environment': {
            'torch': torch.__version__, 'cpu': platform.processor() or platform.machine(),
            'cpu_count': os.cpu_count(), 'torch_threads': torch.get_num_threads(),
            'load_average': [round(v, 2) for v in os.getloadavg()],
            'cuda': torch.cuda.is_available()},
        'settings': {'frames': args.frames, 'batch': args.batch, 'seconds': args.seconds,
                     'repeats': args.repeats},
        'active_listener_fps': ACTIVE_LISTENER_FPS, 'target_rtf': TARGET_RTF, 'models': {}}
    for name in names:
        print(f'{name}: streaming {args.frames} frames ...', file=sys.stderr, flush=True)
        model = build_model(name)
        entry: Dict[str, Any] = {
            'parameters': count_parameters(model.network) if name != 'prosodic' else 0,
            'streaming': bench_streaming(model, speech, args.frames)}
        print(f'{name}: offline throughput ...', file=sys.stderr, flush=True)
        entry['offline'] = bench_offline(name, model, clips, args.repeats)
        offline = entry['offline']
        for key in ('network_fps', 'features_plus_network_fps', 'run_audio_fps'):
            if key in offline:
                offline[key.replace('_fps', '_vs_active_listener')] = (
                    offline[key] / ACTIVE_LISTENER_FPS)
        entry['gpu'] = bench_gpu(name, clips, args.repeats)
        results['models'][name] = entry
    print_report(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
        print(f'\nfigures written to {args.json}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
