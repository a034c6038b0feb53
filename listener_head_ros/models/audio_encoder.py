"""
Pretrained speech encoders (wav2vec2, HuBERT) as a causal, streamable feature front-end.

:func:`load_audio_encoder` loads a model with ``transformers.AutoModel`` from a local directory
or a hub name, safetensors weights only. :class:`StreamingConvEncoder` then runs only its
convolutional feature encoder (the features Active Listener used: 512-d at 50 Hz for the base
models), because that part is causal with a finite receptive field: output frame ``j`` covers
samples ``[j * stride, j * stride + receptive_field)``, so feeding audio in chunks of any size
gives the same frames as one pass over the whole signal.

Streaming limitations, by design:

- The transformer layers attend over the whole utterance (non-causal) and are not used.
- Exact streaming needs ``feat_extract_norm == 'layer'`` (per-frame LayerNorm, e.g. the
  ``large`` and HuBERT models). Models with ``'group'`` (``wav2vec2-base``) normalise over the
  whole utterance in their first layer; they run offline only and :meth:`push` refuses them.
- The processors' per-utterance waveform normalisation is non-causal: feed raw audio.

Transformers is imported on first use only; it is slow to import.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch
from torch import nn


def load_audio_encoder(name_or_path: str, device: str = 'cpu', local_files_only: bool = False,
                       revision: Optional[str] = None) -> nn.Module:
    """
    Load a wav2vec2/HuBERT-style model from a local path or hub name, in eval mode.

    Only safetensors weights are accepted (pickled ``.bin`` files are refused). Raise
    ValueError when the model has no convolutional ``feature_extractor``.
    """
    from transformers import AutoModel

    model = AutoModel.from_pretrained(name_or_path, local_files_only=local_files_only,
                                      revision=revision, use_safetensors=True)
    if not isinstance(getattr(model, 'feature_extractor', None), nn.Module):
        raise ValueError(f'{name_or_path} ({type(model).__name__}) has no convolutional '
                         'feature_extractor; expected a wav2vec2/HuBERT-style model')
    return model.to(device).eval()


class StreamingConvEncoder(nn.Module):
    """Run a wav2vec2/HuBERT convolutional feature encoder offline or chunk by chunk."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        config = model.config
        self.encoder = model.feature_extractor
        self.output_dim = int(config.conv_dim[-1])
        self.streamable = config.feat_extract_norm == 'layer'
        self.stride, self.receptive_field = 1, 1
        for kernel, stride in zip(config.conv_kernel, config.conv_stride):
            self.receptive_field += (int(kernel) - 1) * self.stride
            self.stride *= int(stride)
        self._buffer = np.zeros(0, dtype=np.float32)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        """Map ``(B, N)`` samples to ``(B, frames, output_dim)`` features (none if too short)."""
        if audio.shape[-1] < self.receptive_field:
            return audio.new_zeros(audio.shape[0], 0, self.output_dim)
        return self.encoder(audio).transpose(1, 2)

    def reset(self) -> None:
        """Forget buffered audio, as at the start of a stream."""
        self._buffer = np.zeros(0, dtype=np.float32)

    @torch.inference_mode()
    def push(self, samples: np.ndarray) -> np.ndarray:
        """Consume mono samples; return the ``(n, output_dim)`` frames they complete."""
        if not self.streamable:
            raise ValueError("exact streaming needs feat_extract_norm='layer'; this encoder "
                             'normalises over the whole utterance, so use it offline')
        self._buffer = np.concatenate((self._buffer, np.asarray(samples, np.float32).ravel()))
        if self._buffer.size < self.receptive_field:
            return np.zeros((0, self.output_dim), dtype=np.float32)
        count = (self._buffer.size - self.receptive_field) // self.stride + 1
        used = self._buffer[:(count - 1) * self.stride + self.receptive_field]
        device = next(self.encoder.parameters()).device
        frames = self.forward(torch.from_numpy(used)[None].to(device))[0]
        self._buffer = self._buffer[count * self.stride:]
        return frames.float().cpu().numpy()

    def align_to_hops(self, frames: np.ndarray, hop_length: int, num_hops: int) -> np.ndarray:
        """
        Return ``(num_hops, output_dim)``: for each hop, the latest frame complete by its end.

        Hop ``t`` ends at sample ``(t + 1) * hop_length``; hops before the first complete frame
        get zeros. Causal: no hop sees audio after its own end.
        """
        ends = (np.arange(num_hops) + 1) * int(hop_length)
        index = (ends - self.receptive_field) // self.stride
        out = np.zeros((num_hops, self.output_dim), dtype=np.float32)
        valid = (index >= 0) & (index < len(frames))
        out[valid] = np.asarray(frames)[index[valid]]
        return out
