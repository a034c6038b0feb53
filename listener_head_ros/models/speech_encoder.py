"""
Pretrained speech encoders (wav2vec2, HuBERT, WavLM) as a causal, streamable frame input.

:func:`load_speech_model` loads a ``transformers`` model from a local directory or a hub name
(safetensors weights only, no remote code). :class:`WindowedSpeechEncoder` makes it causal:

*Bounded window of past audio, every k frames.* At every ``every``-th model frame (counted from
the stream start) the encoder runs on the last ``window`` seconds of audio ending with that
frame's hop (zeros before the stream start), and the frame's input is the **newest** encoder
frame's hidden states of the chosen ``layers``; the frames until the next run hold it. So no
frame sees audio after its own end, and the batch path (:meth:`~WindowedSpeechEncoder.encode`,
which cuts the same windows from the whole signal) gives the same rows as stepping.

Why not "only causal layers": of these models only the convolutional feature encoder is causal
(the transformer layers and even the positional convolution see the whole input), and its
features are the least informative ones (SUPERB's layer analysis puts prosody, speaker and
content in the middle and upper transformer layers). A window of 2 s gives the transformer the
context it was trained on at a bounded cost per run; ``every`` trades that cost against the
frame rate (3 frames: 10 runs per second at 30 frames/s).

Normalisation: the models' processors standardise each utterance (non-causal); here each
window is standardised on its own (``normalize``), which is causal.
"""

from __future__ import annotations

import math
import time
from typing import Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn

SPEECH_MODEL_TYPES: Tuple[str, ...] = ('wav2vec2', 'hubert', 'wavlm')
"""The ``model_type`` of the encoders accepted (their configs' ``model_type`` field)."""
BATCH_WINDOWS = 16  # windows per forward pass in the batch path


def load_speech_model(name_or_path: str, device: str = 'cpu',
                      local_files_only: bool = False) -> nn.Module:
    """
    Load a wav2vec2 / HuBERT / WavLM model from a directory or hub name, in eval mode.

    Only safetensors weights are read and no remote code runs; raise ValueError for another
    kind of model and OSError when nothing is found (nothing is downloaded offline).
    """
    from transformers import AutoConfig, AutoModel
    from transformers.utils import logging

    logging.disable_progress_bar()
    config = AutoConfig.from_pretrained(name_or_path, local_files_only=local_files_only)
    if config.model_type not in SPEECH_MODEL_TYPES:
        raise ValueError(f'{name_or_path} is a {config.model_type!r} model; a speech encoder '
                         f'must be one of {", ".join(SPEECH_MODEL_TYPES)}')
    model = AutoModel.from_pretrained(name_or_path, local_files_only=local_files_only,
                                      use_safetensors=True)
    return model.to(device).eval()


class WindowedSpeechEncoder:
    """Hidden states of a speech model on bounded windows of past audio (module docstring)."""

    def __init__(self, model: nn.Module, layers: Sequence[int], window_samples: int,
                 every: int, hop_length: int, sample_rate: int, normalize: bool = True) -> None:
        self.model, self.sample_rate = model, int(sample_rate)
        self.depth = int(model.config.num_hidden_layers) + 1  # hidden_states: input + layers
        self.layers = tuple(int(i) for i in layers)
        if not self.layers or any(not -self.depth <= i < self.depth for i in self.layers):
            raise ValueError(f'speech layers {list(self.layers)} must be hidden states '
                             f'{-self.depth}..{self.depth - 1} of this {self.depth - 1}-layer '
                             'encoder')
        self.width = int(model.config.hidden_size)
        self.dim = self.width * len(self.layers)
        self.window_samples, self.every = int(window_samples), int(every)
        self.hop_length, self.normalize = int(hop_length), bool(normalize)
        if self.every < 1 or self.window_samples < self.hop_length:
            raise ValueError('need every >= 1 and a window of at least one hop')
        self.device = next(model.parameters()).device
        self.reset()

    def reset(self) -> None:
        """Forget the audio history, as at the start of a stream."""
        self._history = np.zeros(self.window_samples, dtype=np.float32)
        self._frame = 0
        self._held = np.zeros(self.dim, dtype=np.float32)

    @torch.inference_mode()
    def _newest(self, windows: np.ndarray) -> np.ndarray:
        """Return ``(B, dim)``: the chosen layers of the newest encoder frame of each window."""
        x = torch.from_numpy(np.ascontiguousarray(windows, dtype=np.float32)).to(self.device)
        if self.normalize:
            x = (x - x.mean(-1, keepdim=True)) / torch.sqrt(x.var(-1, keepdim=True) + 1e-7)
        states = self.model(x, output_hidden_states=True).hidden_states
        return torch.cat([states[i][:, -1] for i in self.layers], -1).float().cpu().numpy()

    def run_seconds(self, repeats: int = 3) -> float:
        """Return the wall time of one encoder run on a window (the best of ``repeats``)."""
        window = np.zeros((1, self.window_samples), dtype=np.float32)
        best = math.inf
        for _ in range(repeats):
            start = time.perf_counter()
            self._newest(window)
            best = min(best, time.perf_counter() - start)
        return best

    def real_time_share(self, seconds: float) -> float:
        """Return the share of real time that runs of ``seconds`` each take at this rate."""
        return seconds / (self.every * self.hop_length / self.sample_rate)

    def step(self, hop: np.ndarray) -> np.ndarray:
        """Consume one hop of samples; return the frame's ``(dim,)`` input (held between runs)."""
        samples = np.asarray(hop, dtype=np.float32).reshape(-1)
        self._history = np.concatenate((self._history[samples.size:], samples))
        if self._frame % self.every == 0:
            self._held = self._newest(self._history[None])[0]
        self._frame += 1
        return self._held.copy()

    def encode(self, audio: np.ndarray, n_frames: Optional[int] = None) -> np.ndarray:
        """Return the ``(T, dim)`` rows of the first ``T`` hops, as stepping would give them."""
        samples = np.asarray(audio, dtype=np.float32).reshape(-1)
        n = samples.size // self.hop_length
        n = n if n_frames is None else min(n, int(n_frames))
        rows = np.zeros((n, self.dim), dtype=np.float32)
        if n == 0:
            return rows
        padded = np.concatenate((np.zeros(self.window_samples, dtype=np.float32), samples))
        runs = np.arange(0, n, self.every)
        ends = (runs + 1) * self.hop_length + self.window_samples  # in padded samples
        for first in range(0, runs.size, BATCH_WINDOWS):
            chunk = ends[first:first + BATCH_WINDOWS]
            windows = np.stack([padded[e - self.window_samples:e] for e in chunk])
            newest = self._newest(windows)
            for k, run in enumerate(runs[first:first + BATCH_WINDOWS]):
                rows[run:run + self.every] = newest[k]
        return rows
