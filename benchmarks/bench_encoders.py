"""
Benchmark the pretrained-encoder inputs: what a speech encoder and text features cost per frame.

Random-weight ``transformers`` models (untrained weights cost what trained ones do; nothing is
downloaded) of two sizes, run as the node runs them
(:class:`~listener_head_ros.models.speech_encoder.WindowedSpeechEncoder`: the encoder on the
last ``--window`` seconds of audio every ``every`` frames):

speech
    wav2vec2, HuBERT and WavLM at a tiny size (4 layers of 256) and the base size (the
    configs' defaults: 12 layers of 768, ~95M parameters): wall time of one encoder run (best
    of ``--repeats``), its cost per frame at every = 1, 3 and 6 frames, and the share of real
    time that is (above 100 % the node drops frames, counted).
step
    A whole live step of a learned listener (acoustic + base WavLM, ``--every`` frames
    apart, a tiny GRU) over ``--steps`` hops: p50 / p99 of wall time per frame; the p99 is a
    frame with an encoder run.
text
    Lexical text features per frame, and one result through a random BERT-base.
cuda
    The speech figures on the GPU when ``torch.cuda.is_available()``; otherwise one line says
    there is no device.

It prints numbers and never fails on them. Example::

    OMP_WAIT_POLICY=PASSIVE python benchmarks/bench_encoders.py --threads 1
"""

from __future__ import annotations

import argparse
import time
from typing import Any, Dict, List, Optional

from bench_models import best_seconds, load_speech, looped, SPEECH
import numpy as np
import torch

from listener_head_ros.features import FeatureConfig
from listener_head_ros.models.base import StepContext, TranscriptEvent
from listener_head_ros.models.frame_inputs import FrameInputs, InputConfig
from listener_head_ros.models.learned import TorchListenerModel
from listener_head_ros.models.registry import build_network
from listener_head_ros.models.speech_encoder import WindowedSpeechEncoder
from listener_head_ros.models.text_features import TextFeatures, TransformerTextEncoder

SIZES: Dict[str, Dict[str, Any]] = {
    'tiny': dict(hidden_size=256, num_hidden_layers=4, num_attention_heads=4,
                 intermediate_size=1024),
    'base': {},
}
EVERY = (1, 3, 6)
SENTENCE = 'well I really think that is a good idea, do you?'


def speech_model(kind: str, size: str) -> torch.nn.Module:
    """Return a random-weight speech encoder of ``kind`` and ``size``, in eval mode."""
    import transformers

    config, model = {'wav2vec2': (transformers.Wav2Vec2Config, transformers.Wav2Vec2Model),
                     'hubert': (transformers.HubertConfig, transformers.HubertModel),
                     'wavlm': (transformers.WavLMConfig, transformers.WavLMModel)}[kind]
    torch.manual_seed(0)
    return model(config(**SIZES[size])).eval()


def bench_speech(device: str, window: float, repeats: int) -> List[Dict[str, Any]]:
    """Return one run's wall time and the per-frame cost of each encoder on ``device``."""
    features = FeatureConfig()
    rows = []
    for size in SIZES:
        for kind in ('wav2vec2', 'hubert', 'wavlm'):
            model = speech_model(kind, size).to(device)
            encoder = WindowedSpeechEncoder(model, (-1,), int(window * features.sample_rate), 1,
                                            features.hop_length, features.sample_rate)
            seconds = encoder.run_seconds(repeats)
            parameters = sum(p.numel() for p in model.parameters())
            frame = features.hop_length / features.sample_rate
            rows.append({'kind': kind, 'size': size, 'parameters': parameters,
                         'run_ms': 1e3 * seconds,
                         'per_frame': {k: (1e3 * seconds / k, seconds / (k * frame))
                                       for k in EVERY}})
            del model, encoder
    return rows


def bench_step(steps: int, every: int, window: float) -> Dict[str, float]:
    """Return p50 / p99 ms of a listener step with a base WavLM every ``every`` frames."""
    features = FeatureConfig()
    inputs = FrameInputs(InputConfig(), features)
    inputs.speech = WindowedSpeechEncoder(
        speech_model('wavlm', 'base'), (-1,), int(window * features.sample_rate), every,
        features.hop_length, features.sample_rate)
    inputs.config = InputConfig(speech_encoder='random-base-wavlm', speech_dim=768,
                                speech_every=every, speech_window=window)
    inputs.dim = inputs.config.dim(features)
    network = build_network('causal_gru_mdn', {'input_dim': inputs.dim, 'hidden_size': 64,
                                               'conv_channels': 64, 'num_layers': 1})
    model = TorchListenerModel(network, features, inputs=inputs)
    audio = looped(load_speech(SPEECH, features.sample_rate), steps * model.hop_length)
    hop = model.hop_length
    times = []
    for i in range(steps):
        start = time.perf_counter()
        model.step(audio[i * hop:(i + 1) * hop])
        times.append(time.perf_counter() - start)
    return {'p50_ms': 1e3 * float(np.percentile(times, 50)),
            'p99_ms': 1e3 * float(np.percentile(times, 99)),
            'mean_ms': 1e3 * float(np.mean(times))}


def bench_text(repeats: int) -> Dict[str, float]:
    """Return the lexical features' cost per frame and a BERT-base's cost per result."""
    import transformers

    lexical = TextFeatures()
    events = [TranscriptEvent(0.1 * i, ' '.join(SENTENCE.split()[:i % 12 + 1]),
                              final=i % 12 == 11) for i in range(120)]
    contexts = [StepContext(0.1 * i + 0.05, (e,)) for i, e in enumerate(events)]
    per_frame = best_seconds(lambda: lexical.rows(contexts), repeats) / len(contexts)
    encoder = TransformerTextEncoder.__new__(TransformerTextEncoder)
    torch.manual_seed(0)
    encoder.model = transformers.BertModel(transformers.BertConfig()).eval()
    encoder.dim, encoder.device, encoder.max_tokens = 768, 'cpu', 64
    tokens = {'input_ids': torch.randint(1000, 2000, (1, 16)),
              'attention_mask': torch.ones(1, 16, dtype=torch.long)}
    with torch.inference_mode():
        per_result = best_seconds(lambda: encoder.model(**tokens), repeats)
    return {'lexical_us_per_frame': 1e6 * per_frame, 'bert_base_ms_per_result': 1e3 * per_result}


def print_speech(title: str, rows: List[Dict[str, Any]], window: float) -> None:
    """Print the speech table."""
    print(f'\n{title}: one encoder run on {window:g} s of audio; per frame at 30 frames/s')
    header = ''.join(f' | every {k}: ms/frame, RT' for k in EVERY)
    print(f'{"encoder":<16} {"params":>8} {"run ms":>8}{header}')
    for r in rows:
        cells = ''.join(f' | {ms:8.2f} {share:6.0%}' for ms, share in r['per_frame'].values())
        print(f'{r["kind"] + " " + r["size"]:<16} {r["parameters"] / 1e6:7.1f}M '
              f'{r["run_ms"]:8.1f}{cells}')


def main(argv: Optional[List[str]] = None) -> int:
    """Run the benchmark and print its tables."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--window', type=float, default=2.0)
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--steps', type=int, default=90)
    parser.add_argument('--every', type=int, default=3)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f'torch {torch.__version__}, {args.threads} thread(s)')
    print_speech(f'CPU, {args.threads} thread(s)', bench_speech('cpu', args.window,
                                                                args.repeats), args.window)
    step = bench_step(args.steps, args.every, args.window)
    print(f'\nlive step, acoustic + base WavLM every {args.every} frames + tiny GRU, '
          f'{args.steps} frames: p50 {step["p50_ms"]:.2f} ms, p99 {step["p99_ms"]:.2f} ms, '
          f'mean {step["mean_ms"]:.2f} ms (a frame lasts 33.3 ms)')
    text = bench_text(args.repeats)
    print(f'\ntext: lexical features {text["lexical_us_per_frame"]:.1f} us per frame; '
          f'BERT-base {text["bert_base_ms_per_result"]:.1f} ms per recognition result')
    if torch.cuda.is_available():
        print_speech(f'CUDA ({torch.cuda.get_device_name()})',
                     bench_speech('cuda', args.window, args.repeats), args.window)
    else:
        print('\ncuda: no CUDA device here; the GPU figures need one')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
