"""Bounded, thread-safe mono audio FIFO that hands out whole hops."""

from __future__ import annotations

import threading

import numpy as np


class AudioRingBuffer:
    """
    Fixed-capacity float32 FIFO shared by an audio callback (writer) and a timer (reader).

    The buffer never grows: when a write does not fit, the oldest samples are
    discarded and counted in :attr:`overflowed_samples`.  All methods take one
    lock and never block otherwise.
    """

    def __init__(self, capacity_samples: int) -> None:
        if capacity_samples < 1:
            raise ValueError(f"capacity_samples must be >= 1, got {capacity_samples}")
        self._buf = np.zeros(int(capacity_samples), dtype=np.float32)
        self._start = 0
        self._size = 0
        self._overflowed = 0
        self._lock = threading.Lock()

    @property
    def capacity(self) -> int:
        """Maximum number of samples held."""
        return int(self._buf.size)

    @property
    def available(self) -> int:
        """Return the number of samples currently held."""
        with self._lock:
            return self._size

    @property
    def overflowed_samples(self) -> int:
        """Total number of oldest samples discarded because the buffer was full."""
        with self._lock:
            return self._overflowed

    def write(self, samples: np.ndarray) -> int:
        """Append samples, discarding the oldest on overflow; return how many were discarded."""
        x = np.asarray(samples, dtype=np.float32).reshape(-1)
        cap = self._buf.size
        with self._lock:
            discarded = max(0, self._size + x.size - cap)
            if x.size >= cap:
                self._buf[:] = x[x.size - cap:]
                self._start = 0
                self._size = cap
            else:
                if discarded:
                    self._start = (self._start + discarded) % cap
                    self._size -= discarded
                end = (self._start + self._size) % cap
                first = min(x.size, cap - end)
                self._buf[end:end + first] = x[:first]
                self._buf[:x.size - first] = x[first:]
                self._size += x.size
            self._overflowed += discarded
        return discarded

    def _pop(self, n: int) -> np.ndarray:
        cap = self._buf.size
        first = min(n, cap - self._start)
        out = np.concatenate((self._buf[self._start:self._start + first], self._buf[:n - first]))
        self._start = (self._start + n) % cap
        self._size -= n
        return out

    def read_hops(self, hop_length: int, max_hops: int | None = None) -> np.ndarray:
        """Pop up to ``max_hops`` complete hops, oldest first, as an ``(n, hop_length)`` array."""
        if hop_length < 1:
            raise ValueError(f"hop_length must be >= 1, got {hop_length}")
        with self._lock:
            n = self._size // hop_length
            if max_hops is not None:
                n = min(n, max(0, max_hops))
            return self._pop(n * hop_length).reshape(n, hop_length)

    def drop_excess_hops(self, hop_length: int, max_hops: int) -> int:
        """Discard the oldest whole hops so at most ``max_hops`` remain; return how many."""
        if hop_length < 1:
            raise ValueError(f"hop_length must be >= 1, got {hop_length}")
        with self._lock:
            excess = max(0, self._size // hop_length - max(0, max_hops))
            self._start = (self._start + excess * hop_length) % self._buf.size
            self._size -= excess * hop_length
            return excess

    def clear(self) -> None:
        """Discard every held sample (the overflow count is kept)."""
        with self._lock:
            self._start = 0
            self._size = 0
