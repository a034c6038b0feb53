"""Tests for the streaming resampler."""

import numpy as np
import pytest

from listener_head_ros.audio.resample import StreamingResampler


def _run(resampler: StreamingResampler, x: np.ndarray, chunk: int) -> np.ndarray:
    parts = [resampler.process(x[i:i + chunk]) for i in range(0, x.size, chunk)]
    return np.concatenate(parts + [resampler.flush()])


@pytest.mark.parametrize("in_rate,out_rate", [(48000, 16000), (44100, 16000), (8000, 16000)])
@pytest.mark.parametrize("chunk", [1, 7, 512, 160000])
def test_chunk_size_invariance(in_rate: int, out_rate: int, chunk: int) -> None:
    """Give the same output for any chunk size as for one contiguous chunk."""
    rng = np.random.default_rng(0)
    x = (0.1 * rng.standard_normal(200000)).astype(np.float32)
    whole = _run(StreamingResampler(in_rate, out_rate), x, x.size)
    chunked = _run(StreamingResampler(in_rate, out_rate), x, chunk)
    assert chunked.dtype == np.float32
    assert chunked.size == whole.size
    assert abs(whole.size - x.size * out_rate / in_rate) <= 2
    np.testing.assert_allclose(chunked, whole, atol=1e-6)


@pytest.mark.parametrize("in_rate", [48000, 44100, 8000])
def test_preserves_a_tone(in_rate: int) -> None:
    """Keep a 440 Hz tone intact through resampling to 16 kHz."""
    t = np.arange(in_rate) / in_rate
    x = (0.5 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32)
    y = _run(StreamingResampler(in_rate, 16000), x, 1000)
    t_out = np.arange(y.size) / 16000
    expected = 0.5 * np.sin(2 * np.pi * 440.0 * t_out)
    np.testing.assert_allclose(y[2000:14000], expected[2000:14000], atol=5e-3)


def test_passthrough_when_rates_are_equal() -> None:
    """Pass samples through unchanged when the rates are equal."""
    resampler = StreamingResampler(16000, 16000)
    assert resampler.passthrough
    x = np.array([0.1, -0.2, 0.3], dtype=np.float64)
    y = resampler.process(x)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, x, rtol=1e-7)
    assert resampler.flush().size == 0


def test_empty_chunk_and_reset() -> None:
    """Accept empty chunks and restart cleanly after reset."""
    resampler = StreamingResampler(48000, 16000)
    assert not resampler.passthrough
    assert resampler.process(np.zeros(0, dtype=np.float32)).size == 0
    x = (0.1 * np.random.default_rng(1).standard_normal(4800)).astype(np.float32)
    first = _run(resampler, x, 480)
    resampler.process(np.ones(1000, dtype=np.float32))
    resampler.reset()
    second = _run(resampler, x, 480)
    np.testing.assert_array_equal(first, second)
    assert (resampler.in_rate, resampler.out_rate) == (48000, 16000)


def test_invalid_rates() -> None:
    """Reject non-positive sample rates."""
    with pytest.raises(ValueError, match="positive"):
        StreamingResampler(0, 16000)
