"""Streaming acoustic features: log-mel, energy and f0/voicing, one frame per hop."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import librosa.filters
import numpy as np

_LOG_FLOOR = 1e-10
_DB_FLOOR = -100.0


@dataclass(frozen=True)
class FeatureConfig:
    """Analysis settings shared by the streaming and the offline feature paths."""

    sample_rate: int = 16000
    frame_rate: float = 30.0
    n_fft: int = 1024
    n_mels: int = 64
    fmin: float = 60.0
    fmax: float = 8000.0
    f0_min: float = 70.0
    f0_max: float = 400.0
    voicing_threshold: float = 0.5  # minimum voicing (1 - YIN dip) for a voiced frame
    silence_db: float = -50.0  # windows quieter than this are unvoiced with voicing 0
    yin_threshold: float = 0.15  # YIN picks the first dip below this, else the deepest

    @property
    def hop_length(self) -> int:
        """Return the number of samples per model frame."""
        return int(round(self.sample_rate / self.frame_rate))


@dataclass(frozen=True)
class FeatureFrame:
    """Features of one hop, computed causally over the window ending at the hop's last sample."""

    log_mel: np.ndarray  # (n_mels,) float32, natural log of mel power
    energy_db: float  # RMS level of the analysis window in dBFS (<= 0, floor -100)
    f0_hz: float  # fundamental frequency; 0.0 when unvoiced
    voicing: float  # periodicity confidence in 0..1


@dataclass(frozen=True)
class FeatureBatch:
    """Features of ``T`` consecutive hops (float32 arrays)."""

    log_mel: np.ndarray  # (T, n_mels)
    energy_db: np.ndarray  # (T,)
    f0_hz: np.ndarray  # (T,)
    voicing: np.ndarray  # (T,)

    def __len__(self) -> int:
        return int(self.energy_db.shape[0])

    def frame(self, i: int) -> FeatureFrame:
        """Return the features of hop ``i`` as a :class:`FeatureFrame`."""
        return FeatureFrame(
            log_mel=self.log_mel[i].copy(),
            energy_db=float(self.energy_db[i]),
            f0_hz=float(self.f0_hz[i]),
            voicing=float(self.voicing[i]),
        )


class _Analysis:
    """
    Precomputed window, mel filterbank and YIN lag range for one configuration.

    :meth:`analyse` is the one feature computation of both paths: a ``(T, n_fft)`` batch of
    analysis windows in, their features out, every transform batched over the windows
    (float64 FFTs and array operations, no per-window Python loop).
    """

    def __init__(self, cfg: FeatureConfig) -> None:
        self.cfg = cfg
        self.n_fft = int(cfg.n_fft)
        self.hop = cfg.hop_length
        if self.hop < 1:
            raise ValueError(f"hop_length must be >= 1, got {self.hop}")
        if not 0.0 <= cfg.fmin < cfg.fmax <= cfg.sample_rate / 2:
            raise ValueError(
                f"need 0 <= fmin < fmax <= sample_rate/2, got fmin={cfg.fmin}, "
                f"fmax={cfg.fmax}, sample_rate={cfg.sample_rate}")
        if not 0.0 < cfg.f0_min < cfg.f0_max:
            raise ValueError(f"need 0 < f0_min < f0_max, got {cfg.f0_min}, {cfg.f0_max}")
        self.lag_lo = max(2, int(np.ceil(cfg.sample_rate / cfg.f0_max)))
        self.lag_hi = int(np.floor(cfg.sample_rate / cfg.f0_min))
        self.max_lag = self.lag_hi + 1
        self.n_integ = self.n_fft - self.max_lag
        if self.lag_hi <= self.lag_lo or self.n_integ < self.max_lag:
            raise ValueError(
                f"n_fft={self.n_fft} is too short for f0_min={cfg.f0_min} Hz at "
                f"{cfg.sample_rate} Hz; need n_fft >= {2 * self.max_lag}")
        self.window = librosa.filters.get_window('hann', self.n_fft, fftbins=True)
        self.mel_basis = librosa.filters.mel(
            sr=cfg.sample_rate, n_fft=self.n_fft, n_mels=cfg.n_mels, fmin=cfg.fmin,
            fmax=cfg.fmax, dtype=np.float64).T.copy()  # (n_freqs, n_mels)
        self.lags = np.arange(1, self.max_lag + 1, dtype=np.float64)

    def analyse(self, frames: np.ndarray) -> FeatureBatch:
        """Return the features of ``(T, n_fft)`` float64 analysis windows, batched over them."""
        spec = np.fft.rfft(frames * self.window, axis=1)
        power = np.square(spec.real) + np.square(spec.imag)
        log_mel = np.log(np.maximum(power @ self.mel_basis, _LOG_FLOOR)).astype(np.float32)
        return FeatureBatch(log_mel, *self.prosody(frames))

    def prosody(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """
        Return energy_db, f0_hz and voicing (float32, ``(T,)``) of ``(T, n_fft)`` windows.

        YIN's correlation of each window's first ``n_integ`` samples with the window is a
        circular one of ``n_fft`` points, which has no wrap-around at lags ``0..max_lag``.
        """
        cfg = self.cfg
        n, max_lag = self.n_integ, self.max_lag
        spec = np.fft.rfft(x, axis=1)
        head = np.fft.rfft(x[:, :n], self.n_fft, axis=1)
        cross = np.fft.irfft(spec * np.conj(head), self.n_fft, axis=1)[:, :max_lag + 1]
        # energy of x[lag:lag + n] for every lag, from the head's and both ends' running sums
        head_energy = np.einsum('ij,ij->i', x[:, :n], x[:, :n])[:, None]
        ends = np.zeros((x.shape[0], 2, max_lag + 1))
        np.cumsum(np.square(np.stack((x[:, :max_lag], x[:, n:]), 1)), axis=2,
                  out=ends[:, :, 1:])
        shifted_energy = head_energy + ends[:, 1] - ends[:, 0]
        rms = np.sqrt((head_energy[:, 0] + ends[:, 1, -1]) / self.n_fft)
        energy_db = np.maximum(20.0 * np.log10(np.maximum(rms, 1e-5)), _DB_FLOOR)

        diff = np.maximum(shifted_energy[:, :1] + shifted_energy - 2.0 * cross, 0.0)
        running = np.cumsum(diff[:, 1:], axis=1)
        cmndf = np.ones_like(diff)
        np.divide(diff[:, 1:] * self.lags, running, out=cmndf[:, 1:], where=running > 1e-12)

        lo, hi = self.lag_lo, self.lag_hi
        seg = cmndf[:, lo:hi + 1]
        local_min = (seg <= cmndf[:, lo - 1:hi]) & (seg <= cmndf[:, lo + 1:hi + 2])
        dips = local_min & (seg < cfg.yin_threshold)
        best = np.where(dips.any(axis=1), np.argmax(dips, axis=1), np.argmin(seg, axis=1)) + lo
        rows = np.arange(x.shape[0])
        left, mid, right = cmndf[rows, best - 1], cmndf[rows, best], cmndf[rows, best + 1]
        curvature = left - 2.0 * mid + right
        shift = np.zeros_like(mid)
        np.divide(0.5 * (left - right), curvature, out=shift, where=curvature > 1e-12)
        shift = np.clip(shift, -0.5, 0.5)
        dip = mid - 0.25 * (left - right) * shift
        voicing = np.clip(1.0 - dip, 0.0, 1.0)
        f0 = cfg.sample_rate / (best + shift)

        silent = energy_db < cfg.silence_db
        voicing = np.where(silent, 0.0, voicing)
        f0 = np.where(silent | (voicing < cfg.voicing_threshold), 0.0, f0)
        return energy_db.astype(np.float32), f0.astype(np.float32), voicing.astype(np.float32)


@lru_cache(maxsize=8)
def _analysis(cfg: FeatureConfig) -> _Analysis:
    return _Analysis(cfg)


class StreamingFeatureExtractor:
    """
    Causal feature extractor: one :class:`FeatureFrame` per hop of ``cfg.hop_length`` samples.

    Each frame is computed over the last ``cfg.n_fft`` samples ending at the hop's
    last sample (zeros before the stream start), so stepping hop by hop gives the
    same features as :func:`extract_features` on the whole signal.
    """

    def __init__(self, cfg: FeatureConfig | None = None) -> None:
        self.cfg = cfg if cfg is not None else FeatureConfig()
        self._an = _analysis(self.cfg)
        self._history = np.zeros(self._an.n_fft, dtype=np.float64)

    @property
    def hop_length(self) -> int:
        """Return the number of samples per hop accepted by :meth:`step`."""
        return self._an.hop

    def reset(self) -> None:
        """Forget the audio history, as at the start of a new stream."""
        self._history[:] = 0.0

    def step(self, hop: np.ndarray) -> FeatureFrame:
        """Consume exactly one hop of float32 samples and return its features."""
        x = np.asarray(hop, dtype=np.float32).reshape(-1).astype(np.float64)
        an = self._an
        if x.size != an.hop:
            raise ValueError(f"step() needs exactly {an.hop} samples, got {x.size}")
        if an.hop >= an.n_fft:
            self._history[:] = x[-an.n_fft:]
        else:
            self._history[:-an.hop] = self._history[an.hop:]
            self._history[-an.hop:] = x
        return an.analyse(self._history[None]).frame(0)


def extract_features(audio: np.ndarray, cfg: FeatureConfig | None = None) -> FeatureBatch:
    """
    Compute the features of the first ``len(audio) // hop_length`` hops in one batch.

    Equal, to float tolerance, to stepping :class:`StreamingFeatureExtractor` hop by hop
    over the same mono signal; trailing samples that do not fill a hop are ignored.
    """
    cfg = cfg if cfg is not None else FeatureConfig()
    an = _analysis(cfg)
    x = np.asarray(audio, dtype=np.float32).reshape(-1).astype(np.float64)
    n_frames = x.size // an.hop
    if n_frames == 0:
        empty = np.zeros(0, dtype=np.float32)
        return FeatureBatch(np.zeros((0, cfg.n_mels), dtype=np.float32), empty, empty, empty)
    padded = np.concatenate(
        (np.zeros(max(0, an.n_fft - an.hop)), x[max(0, an.hop - an.n_fft):]))
    padded = padded[:(n_frames - 1) * an.hop + an.n_fft]
    return an.analyse(np.lib.stride_tricks.sliding_window_view(padded, an.n_fft)[::an.hop])
