"""Tests for the streaming and offline acoustic features."""

import librosa.filters
import numpy as np
import pytest

from listener_head_ros.audio.ring_buffer import AudioRingBuffer
from listener_head_ros.features import (
    FeatureBatch, FeatureConfig, FeatureFrame, StreamingFeatureExtractor, extract_features)

SR = 16000


def _harmonic(f0: float, seconds: float, amp: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    tone = sum(amp / k * np.sin(2 * np.pi * f0 * k * t + 0.7 * k) for k in range(1, 8))
    return tone.astype(np.float32)


def _mixed_signal(seconds: float = 3.0) -> np.ndarray:
    rng = np.random.default_rng(7)
    third = int(seconds * SR / 3)
    noise = 0.05 * rng.standard_normal(third)
    t = np.arange(third) / SR
    glide = 0.4 * np.sin(2 * np.pi * (120 * t + 40 * t ** 2))
    return np.concatenate(
        (noise, _harmonic(180.0, third / SR), np.zeros(third // 2), glide)).astype(np.float32)


def _stream(x: np.ndarray, cfg: FeatureConfig) -> list[FeatureFrame]:
    extractor = StreamingFeatureExtractor(cfg)
    hop = cfg.hop_length
    return [extractor.step(x[i * hop:(i + 1) * hop]) for i in range(x.size // hop)]


def _assert_frames_match(frames: list[FeatureFrame], batch: FeatureBatch) -> None:
    assert len(frames) == len(batch)
    np.testing.assert_allclose(
        np.stack([f.log_mel for f in frames]), batch.log_mel, atol=1e-4, rtol=0)
    np.testing.assert_allclose([f.energy_db for f in frames], batch.energy_db, atol=1e-4)
    np.testing.assert_allclose([f.f0_hz for f in frames], batch.f0_hz, rtol=1e-5)
    np.testing.assert_allclose([f.voicing for f in frames], batch.voicing, atol=1e-5)


@pytest.mark.parametrize("cfg", [
    FeatureConfig(),
    FeatureConfig(frame_rate=25.0, n_fft=512, n_mels=40),
    FeatureConfig(frame_rate=20.0, n_fft=512),
])
def test_streaming_equals_offline(cfg: FeatureConfig) -> None:
    """Give the same features stepping hop by hop as in one batch."""
    x = _mixed_signal()
    batch = extract_features(x, cfg)
    assert len(batch) == x.size // cfg.hop_length
    assert batch.log_mel.shape == (len(batch), cfg.n_mels)
    for array in (batch.log_mel, batch.energy_db, batch.f0_hz, batch.voicing):
        assert array.dtype == np.float32
    _assert_frames_match(_stream(x, cfg), batch)


def test_log_mel_matches_reference_spectrogram() -> None:
    """Match a straightforward numpy log-mel spectrogram."""
    cfg = FeatureConfig()
    x = _mixed_signal()
    batch = extract_features(x, cfg)
    padded = np.concatenate((np.zeros(cfg.n_fft - cfg.hop_length), x.astype(np.float64)))
    starts = np.arange(len(batch)) * cfg.hop_length
    frames = np.stack([padded[s:s + cfg.n_fft] for s in starts])
    window = np.hanning(cfg.n_fft + 1)[:-1]
    power = np.abs(np.fft.rfft(frames * window, axis=1)) ** 2
    mel_basis = librosa.filters.mel(
        sr=SR, n_fft=cfg.n_fft, n_mels=cfg.n_mels, fmin=cfg.fmin, fmax=cfg.fmax)
    expected = np.log(np.maximum(power @ mel_basis.T.astype(np.float64), 1e-10))
    np.testing.assert_allclose(batch.log_mel, expected, atol=1e-4, rtol=1e-5)


def _reference_yin(window: np.ndarray, cfg: FeatureConfig) -> tuple[float, float]:
    """Return (f0, voicing) of one analysis window by YIN with directly summed differences."""
    lo = max(2, int(np.ceil(SR / cfg.f0_max)))
    hi = int(np.floor(SR / cfg.f0_min))
    n = cfg.n_fft - hi - 1
    diff = np.array([np.sum((window[:n] - window[lag:lag + n]) ** 2) for lag in range(hi + 2)])
    cmndf = np.ones_like(diff)
    cmndf[1:] = diff[1:] * np.arange(1, hi + 2) / np.cumsum(diff[1:])
    dips = [lag for lag in range(lo, hi + 1) if cmndf[lag] < cfg.yin_threshold
            and cmndf[lag] <= min(cmndf[lag - 1], cmndf[lag + 1])]
    best = dips[0] if dips else lo + int(np.argmin(cmndf[lo:hi + 1]))
    left, mid, right = cmndf[best - 1:best + 2]
    curvature = left - 2.0 * mid + right
    shift = 0.0
    if curvature > 1e-12:
        shift = float(np.clip(0.5 * (left - right) / curvature, -0.5, 0.5))
    voicing = float(np.clip(1.0 - (mid - 0.25 * (left - right) * shift), 0.0, 1.0))
    return (SR / (best + shift) if voicing >= cfg.voicing_threshold else 0.0), voicing


def test_f0_and_voicing_match_direct_yin() -> None:
    """Match YIN with the difference function summed lag by lag (no FFT) on voiced frames."""
    cfg = FeatureConfig()
    x = _mixed_signal()
    batch = extract_features(x, cfg)
    padded = np.concatenate((np.zeros(cfg.n_fft - cfg.hop_length), x.astype(np.float64)))
    loud = np.flatnonzero(batch.energy_db >= cfg.silence_db)[::3]
    assert loud.size > 30 and np.count_nonzero(batch.f0_hz[loud]) > 10
    for i in loud:
        f0, voicing = _reference_yin(padded[i * cfg.hop_length:][:cfg.n_fft], cfg)
        assert batch.f0_hz[i] == pytest.approx(f0, rel=1e-5)
        assert batch.voicing[i] == pytest.approx(voicing, abs=1e-5)


@pytest.mark.parametrize("f0", [150.0, 220.0])
def test_f0_of_harmonic_tone(f0: float) -> None:
    """Estimate the f0 of a harmonic tone within 2 percent."""
    cfg = FeatureConfig()
    batch = extract_features(_harmonic(f0, 1.0), cfg)
    steady = slice(cfg.n_fft // cfg.hop_length + 1, None)
    np.testing.assert_allclose(batch.f0_hz[steady], f0, rtol=0.02)
    assert np.all(batch.voicing[steady] > 0.9)


def test_energy_of_sine() -> None:
    """Report the RMS level of a sine in dBFS."""
    t = np.arange(SR) / SR
    x = (0.5 * np.sin(2 * np.pi * 200.0 * t)).astype(np.float32)
    batch = extract_features(x, FeatureConfig())
    np.testing.assert_allclose(batch.energy_db[3:], 20 * np.log10(0.5 / np.sqrt(2)), atol=0.1)


def test_white_noise_is_unvoiced() -> None:
    """Report white noise as unvoiced."""
    x = (0.1 * np.random.default_rng(0).standard_normal(2 * SR)).astype(np.float32)
    batch = extract_features(x, FeatureConfig())
    assert np.all(batch.f0_hz == 0.0)
    assert np.all(batch.voicing < FeatureConfig().voicing_threshold)
    assert np.all(batch.energy_db[2:] > -25.0)


def test_silence_is_unvoiced_at_floor() -> None:
    """Report silence as unvoiced, at the energy and log-mel floors."""
    batch = extract_features(np.zeros(SR, dtype=np.float32), FeatureConfig())
    assert np.all(batch.f0_hz == 0.0)
    assert np.all(batch.voicing == 0.0)
    assert np.all(batch.energy_db == -100.0)
    np.testing.assert_allclose(batch.log_mel, np.log(1e-10), rtol=1e-6)


def test_quiet_tone_below_silence_threshold_is_unvoiced() -> None:
    """Treat a tone below the silence level as unvoiced."""
    batch = extract_features(_harmonic(150.0, 1.0, amp=1e-4), FeatureConfig())
    assert np.all(batch.energy_db < -50.0)
    assert np.all(batch.f0_hz == 0.0)


@pytest.mark.parametrize("chunk", [1, 7, 533, 4000, 160000, "random"])
def test_any_chunking_gives_contiguous_stream_features(chunk: object) -> None:
    """Check that any chunking through the ring buffer gives the one-stream features."""
    cfg = FeatureConfig()
    x = _mixed_signal(10.5)
    rng = np.random.default_rng(11)
    buf = AudioRingBuffer(SR * 20)
    extractor = StreamingFeatureExtractor(cfg)
    frames = []
    pos = 0
    while pos < x.size:
        n = int(rng.integers(1, 20000)) if chunk == "random" else int(chunk)
        buf.write(x[pos:pos + n])
        pos += n
        frames.extend(extractor.step(hop) for hop in buf.read_hops(cfg.hop_length))
    assert buf.overflowed_samples == 0
    _assert_frames_match(frames, extract_features(x, cfg))


def test_reset_restarts_the_stream() -> None:
    """Restart the causal history on reset."""
    cfg = FeatureConfig()
    x = _mixed_signal()
    extractor = StreamingFeatureExtractor(cfg)
    for i in range(10):
        extractor.step(x[i * cfg.hop_length:(i + 1) * cfg.hop_length])
    extractor.reset()
    again = extractor.step(x[:cfg.hop_length])
    fresh = extract_features(x, cfg).frame(0)
    np.testing.assert_allclose(again.log_mel, fresh.log_mel, atol=1e-4)
    assert again.f0_hz == fresh.f0_hz and again.energy_db == pytest.approx(fresh.energy_db)


def test_step_needs_exactly_one_hop() -> None:
    """Reject a step with the wrong number of samples."""
    extractor = StreamingFeatureExtractor(FeatureConfig())
    assert extractor.hop_length == 533
    with pytest.raises(ValueError, match="exactly 533"):
        extractor.step(np.zeros(100, dtype=np.float32))


def test_only_whole_hops_produce_frames() -> None:
    """Produce frames for whole hops only."""
    cfg = FeatureConfig()
    assert len(extract_features(np.zeros(cfg.hop_length - 1, np.float32), cfg)) == 0
    empty = extract_features(np.zeros(0, np.float32), cfg)
    assert empty.log_mel.shape == (0, cfg.n_mels)
    assert len(extract_features(np.zeros(5 * cfg.hop_length + 7, np.float32), cfg)) == 5


def test_batch_frame_accessor() -> None:
    """Return one hop of a batch as a FeatureFrame."""
    batch = extract_features(_harmonic(220.0, 0.5), FeatureConfig())
    frame = batch.frame(5)
    assert isinstance(frame, FeatureFrame)
    assert frame.f0_hz == float(batch.f0_hz[5])
    np.testing.assert_array_equal(frame.log_mel, batch.log_mel[5])


def test_invalid_configs() -> None:
    """Reject configurations the analysis cannot support."""
    with pytest.raises(ValueError, match="n_fft"):
        StreamingFeatureExtractor(FeatureConfig(n_fft=256))
    with pytest.raises(ValueError, match="fmax"):
        extract_features(np.zeros(1000), FeatureConfig(fmax=9000.0))
