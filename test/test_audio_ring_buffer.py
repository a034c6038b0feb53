"""Tests for the bounded audio ring buffer."""

import threading
import time

import numpy as np
import pytest

from listener_head_ros.audio.ring_buffer import AudioRingBuffer


def test_fifo_hops_and_wraparound() -> None:
    """Hand out whole hops in FIFO order across the wrap-around."""
    buf = AudioRingBuffer(10)
    buf.write(np.arange(6))
    np.testing.assert_array_equal(buf.read_hops(4), [[0, 1, 2, 3]])
    buf.write(np.arange(6, 14))
    assert buf.available == 10
    hops = buf.read_hops(3, max_hops=2)
    np.testing.assert_array_equal(hops, [[4, 5, 6], [7, 8, 9]])
    assert hops.dtype == np.float32
    np.testing.assert_array_equal(buf.read_hops(3), [[10, 11, 12]])
    assert buf.available == 1
    assert buf.read_hops(3).shape == (0, 3)
    assert buf.overflowed_samples == 0


def test_overflow_discards_oldest_and_counts() -> None:
    """Discard and count the oldest samples on overflow."""
    buf = AudioRingBuffer(8)
    assert buf.write(np.arange(6)) == 0
    assert buf.write(np.arange(6, 11)) == 3
    assert buf.overflowed_samples == 3
    np.testing.assert_array_equal(buf.read_hops(8), [np.arange(3, 11)])


def test_chunk_larger_than_capacity_keeps_newest() -> None:
    """Keep the newest samples of a chunk larger than the capacity."""
    buf = AudioRingBuffer(16000)
    buf.write(np.full(100, -1.0))
    ten_seconds = np.arange(160000, dtype=np.float32)
    assert buf.write(ten_seconds) == 100 + 160000 - 16000
    assert buf.available == 16000
    np.testing.assert_array_equal(buf.read_hops(1000).reshape(-1), ten_seconds[-16000:])
    assert buf.overflowed_samples == 144100


def test_drop_excess_hops_keeps_newest_whole_hops() -> None:
    """Drop the oldest whole hops and keep the newest ones."""
    buf = AudioRingBuffer(100)
    buf.write(np.arange(23))
    assert buf.drop_excess_hops(5, max_hops=2) == 2
    assert buf.available == 13
    np.testing.assert_array_equal(buf.read_hops(5), [[10, 11, 12, 13, 14], [15, 16, 17, 18, 19]])
    assert buf.drop_excess_hops(5, max_hops=2) == 0
    assert buf.available == 3


def test_clear_and_validation() -> None:
    """Empty the buffer on clear and reject invalid sizes."""
    buf = AudioRingBuffer(4)
    buf.write(np.ones(3))
    buf.clear()
    assert buf.available == 0 and buf.capacity == 4
    with pytest.raises(ValueError):
        AudioRingBuffer(0)
    with pytest.raises(ValueError):
        buf.read_hops(0)


def test_concurrent_writer_and_reader_conserve_samples() -> None:
    """Conserve and order samples with a concurrent writer and reader."""
    buf = AudioRingBuffer(4000)
    hop = 160
    total = 200000
    done = threading.Event()
    read_chunks: list[np.ndarray] = []
    dropped_hops = 0

    def writer() -> None:
        rng = np.random.default_rng(3)
        pos = 0
        while pos < total:
            n = min(int(rng.integers(1, 3000)), total - pos)
            buf.write(np.arange(pos, pos + n, dtype=np.float32))
            pos += n
            if rng.random() < 0.5:
                time.sleep(0.0002)  # let the reader in, as a real audio callback would
        done.set()

    def reader() -> None:
        nonlocal dropped_hops
        while not done.is_set() or buf.available >= hop:
            dropped_hops += buf.drop_excess_hops(hop, max_hops=8)
            hops = buf.read_hops(hop, max_hops=3)
            if hops.size:
                read_chunks.append(hops.reshape(-1))

    threads = [threading.Thread(target=writer), threading.Thread(target=reader)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads)

    read = np.concatenate(read_chunks) if read_chunks else np.zeros(0)
    assert read.size + dropped_hops * hop + buf.overflowed_samples + buf.available == total
    assert buf.available < hop
    assert np.all(np.diff(read) > 0)
    assert np.all(np.diff(read.reshape(-1, hop), axis=1) == 1)
