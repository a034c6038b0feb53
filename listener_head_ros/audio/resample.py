"""Chunk-size-invariant streaming sample-rate conversion of mono float32 audio."""

from __future__ import annotations

import numpy as np
import soxr


class StreamingResampler:
    """
    Resample a mono float32 stream chunk by chunk with ``soxr.ResampleStream``.

    Feeding the stream in chunks of any size gives the same output, to float
    tolerance, as resampling it in one piece.  Equal rates pass samples through
    unchanged.  A new rate needs a new resampler.
    """

    def __init__(self, in_rate: int, out_rate: int, quality: str = "HQ") -> None:
        if in_rate <= 0 or out_rate <= 0:
            raise ValueError(f"sample rates must be positive, got {in_rate} -> {out_rate}")
        self._in_rate = int(in_rate)
        self._out_rate = int(out_rate)
        self._quality = quality
        self._stream = self._new_stream()

    def _new_stream(self) -> soxr.ResampleStream | None:
        if self._in_rate == self._out_rate:
            return None
        return soxr.ResampleStream(
            self._in_rate, self._out_rate, 1, dtype="float32", quality=self._quality)

    @property
    def in_rate(self) -> int:
        """Input sample rate in Hz."""
        return self._in_rate

    @property
    def out_rate(self) -> int:
        """Output sample rate in Hz."""
        return self._out_rate

    @property
    def passthrough(self) -> bool:
        """Whether input and output rates are equal (no resampling)."""
        return self._stream is None

    def process(self, samples: np.ndarray) -> np.ndarray:
        """Resample one chunk and return the output samples available so far."""
        if self._stream is None:
            return np.array(samples, dtype=np.float32).reshape(-1)
        x = np.ascontiguousarray(samples, dtype=np.float32).reshape(-1)
        if x.size == 0:
            return np.zeros(0, dtype=np.float32)
        return self._stream.resample_chunk(x, last=False)

    def flush(self) -> np.ndarray:
        """End the stream, return the samples still buffered, and start a fresh stream."""
        if self._stream is None:
            return np.zeros(0, dtype=np.float32)
        tail = self._stream.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
        self._stream = self._new_stream()
        return tail

    def reset(self) -> None:
        """Discard buffered samples and start a fresh stream."""
        self._stream = self._new_stream()
