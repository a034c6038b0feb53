"""
The embedded default listener: prosody-timed nods plus attentive micro-motion and face.

Nods follow the back-channel cue of Ward & Tsukahara, "Prosodic features which cue
back-channel responses in English and Japanese", J. Pragmatics 32 (2000): a region of pitch
below the speaker's 26th percentile, lasting at least 110 ms, after at least 700 ms of speech,
with no back-channel in the preceding 800 ms, answered about 700 ms later. A speech pause after
a long enough stretch of speech also licenses a nod. Between nods the head drifts slowly, follows
the speaker's loudness and pitch a little, blinks, and sometimes smiles.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, Optional, Tuple

import numpy as np

from listener_head_ros.face import (
    ACTION_UNIT_INDEX,
    ACTION_UNITS,
    ARKIT_BLENDSHAPES,
    BLENDSHAPE_INDEX,
)
from listener_head_ros.features import (
    FeatureConfig,
    FeatureFrame,
    StreamingFeatureExtractor,
    extract_features,
)
from listener_head_ros.models.base import (
    BackchannelEvent, EMPTY_CONTEXT, ListenerFrame, SideInputs, StepContext,
    StreamingListenerModel)
from listener_head_ros.schema import setting

_EPS = 1e-9


@dataclass(frozen=True)
class ProsodicListenerConfig:
    """Tunables of the prosodic listener; times in seconds, angles in radians."""

    # Ward & Tsukahara (2000) back-channel rule.
    low_pitch_percentile: float = setting(
        26.0, 'Ward & Tsukahara: pitch below this percentile of the speaker counts as low.')
    low_pitch_min_duration: float = setting(
        0.110, 'Ward & Tsukahara: shortest low-pitch region, s.')
    min_prior_speech: float = setting(
        0.700, 'Ward & Tsukahara: speech needed before the low-pitch region, s.')
    refractory: float = setting(
        0.800, 'Ward & Tsukahara: no backchannel within this time of the previous one, s.')
    response_delay: float = setting(0.700, 'Ward & Tsukahara: delay from the cue to the nod, s.')
    low_pitch_gap_tolerance: float = setting(
        0.070, 'Longest unvoiced gap bridged inside one low-pitch region, s.')
    # Pause cue: a pause after enough speech also licenses a nod.
    pause_min_duration: float = setting(0.400, 'Pause cue: shortest pause that licenses a nod, s.')
    pause_min_prior_speech: float = setting(1.500, 'Pause cue: speech needed before the pause, s.')
    pause_response_delay: float = setting(
        0.100, 'Pause cue: delay from the pause onset to the nod, s.')
    # Online model of the speaker's pitch.
    pitch_memory: float = setting(
        5.0, 'Time constant of forgetting the speaker\'s pitch, s of voiced speech.')
    pitch_warmup: float = setting(
        0.5, 'Voiced speech before the pitch percentile is trusted, s.')
    f0_floor_hz: float = setting(50.0, 'Lowest pitch tracked, Hz.')
    f0_ceiling_hz: float = setting(600.0, 'Highest pitch tracked, Hz.')
    pitch_bins_per_octave: int = setting(
        48, 'Resolution of the online pitch histogram, bins per octave.', (1, 1200))
    voicing_threshold: float = setting(
        0.5, 'Voicing probability above which a frame counts as voiced.')
    # Speech activity.
    speech_min_db: float = setting(-50.0, 'Never speech below this level, dBFS.')
    speech_margin_db: float = setting(
        12.0, 'Speech is at least this far above the noise floor, dB.')
    noise_floor_rise_db_per_s: float = setting(
        2.0, 'Rise of the noise floor under steady sound, dB/s.')
    intra_pause_bridge: float = setting(
        0.300, 'Pauses shorter than this keep one stretch of speech going, s.')
    # Nods.
    nod_amplitude: float = setting(0.12, 'Peak pitch of a nod, rad.')
    nod_duration: float = setting(
        0.6, 'Duration of a one-cycle nod, s; each extra cycle adds half of it.')
    nod_max_cycles: int = setting(2, 'Most down-up cycles in one nod.', (1, 16))
    nod_damping: float = setting(1.5, 'Exponential decay of the nod envelope over its duration.')
    nod_intensity_jitter: float = setting(0.15, 'Relative random variation of nod intensity.')
    nod_blink_probability: float = setting(0.4, 'Probability of a blink with each nod.')
    # Slow posture drift (Ornstein-Uhlenbeck per axis: roll, pitch, yaw).
    drift_std: Tuple[float, float, float] = setting(
        (0.02, 0.025, 0.05), 'Std of the slow posture drift (roll, pitch, yaw), rad.')
    drift_time_constant: float = setting(3.0, 'Time constant of the slow posture drift, s.')
    drift_smoothing: float = setting(0.6, 'Low-pass time constant on the drift, s.')
    # Micro-motion following the speaker.
    energy_smoothing: float = setting(
        0.25, 'Low-pass time constant on the speaker\'s loudness, s.')
    energy_range_db: float = setting(40.0, 'Loudness range mapped to lean-in, dB.')
    energy_pitch_gain: float = setting(0.03, 'Lean-in (pitch, rad) at full loudness.')
    pitch_follow_gain: float = setting(
        0.012, 'Head rise with the speaker\'s pitch, rad per z-score.')
    pitch_roll_gain: float = setting(
        0.008, 'Head tilt with the speaker\'s pitch, rad per z-score.')
    pitch_smoothing: float = setting(0.2, 'Low-pass time constant on the speaker\'s pitch, s.')
    attentive_tilt: float = setting(0.04, 'Roll while engaged, rad; its side is drawn at reset.')
    engagement_time_constant: float = setting(
        2.0, 'Time constant of engagement building up and fading, s.')
    brow_gain: float = setting(0.12, 'Brow raise per z-score of pitch above 0.5.')
    # Blinks.
    blink_rate_per_min: float = setting(15.0, 'Spontaneous blinks per minute.')
    blink_min_interval: float = setting(1.0, 'Shortest time between blinks, s.')
    blink_duration: float = setting(0.25, 'Duration of a blink, s.')
    # Smiles.
    smile_probability: float = setting(0.3, 'Probability of a smile with a nod.')
    smile_intensity: float = setting(0.5, 'Peak smile weight, 0..1.')
    smile_duration: float = setting(2.0, 'Duration of a smile, s.')
    # Safety bound on every output angle.
    max_abs_angle: float = setting(0.6, 'Safety bound on every output angle, rad.')
    seed: int = setting(0, 'Seed of the random nods, blinks, smiles and drift.')

    def __post_init__(self) -> None:
        if not 0.0 < self.low_pitch_percentile < 100.0:
            raise ValueError("low_pitch_percentile must be in (0, 100)")
        if not 0.0 < self.f0_floor_hz < self.f0_ceiling_hz:
            raise ValueError("need 0 < f0_floor_hz < f0_ceiling_hz")
        positive = (
            "pitch_memory", "nod_duration", "drift_time_constant", "energy_range_db",
            "engagement_time_constant", "blink_rate_per_min", "blink_duration",
            "smile_duration", "max_abs_angle",
        )
        for name in positive:
            if not getattr(self, name) > 0.0:
                raise ValueError(f"{name} must be positive")
        if self.nod_max_cycles < 1 or self.pitch_bins_per_octave < 1:
            raise ValueError("nod_max_cycles and pitch_bins_per_octave must be >= 1")
        if len(self.drift_std) != 3:
            raise ValueError("drift_std needs (roll, pitch, yaw)")


class RunningPitchZ:
    """
    Exponentially weighted mean and variance of a speaker's log2 pitch, and z-scores against them.

    Each voiced frame first scores against the statistics so far (clipped to +-3 standard
    deviations, the deviation floored at ``sqrt(min_var)`` octaves), then updates them with
    weight ``alpha``; the first frame sets the mean.
    """

    def __init__(self, alpha: float, initial_var: float, min_var: float) -> None:
        self.alpha, self.initial_var, self.min_var = alpha, initial_var, min_var
        self.reset()

    def reset(self) -> None:
        """Forget the speaker's pitch."""
        self.mean = math.nan
        self.var = self.initial_var

    def update(self, f0_hz: float) -> float:
        """Return the z-score of a voiced frame's ``f0_hz``, then learn from it."""
        log_f0 = math.log2(f0_hz)
        if math.isnan(self.mean):
            self.mean = log_f0
        delta = log_f0 - self.mean
        self.mean += self.alpha * delta
        self.var += self.alpha * (delta * delta - self.var)
        return min(max(delta / math.sqrt(max(self.var, self.min_var)), -3.0), 3.0)


class AdaptivePitchPercentile:
    """
    Online percentile of f0 over voiced frames, with exponential forgetting.

    Keeps a histogram over log2(f0) whose weights decay by ``exp(-1 / memory_frames)`` per
    update, so an old speaker's pitch fades out as a new one talks.
    """

    def __init__(
        self,
        percentile: float,
        memory_frames: float,
        f0_min: float = 50.0,
        f0_max: float = 600.0,
        bins_per_octave: int = 48,
    ) -> None:
        self.percentile = float(percentile)
        self._log_min = math.log2(f0_min)
        self._log_max = math.log2(f0_max)
        self._bins_per_octave = int(bins_per_octave)
        n_bins = int(math.ceil((self._log_max - self._log_min) * self._bins_per_octave))
        self._hist = np.zeros(n_bins, dtype=np.float64)
        self._decay = math.exp(-1.0 / max(float(memory_frames), 1.0))
        self._weight = 0.0
        self._value = math.nan
        self._dirty = False

    def reset(self) -> None:
        """Forget every observation."""
        self._hist[:] = 0.0
        self._weight = 0.0
        self._value = math.nan
        self._dirty = False

    @property
    def weight(self) -> float:
        """Return the effective number of remembered voiced frames."""
        return self._weight

    def update(self, f0_hz: float) -> None:
        """Add one voiced frame; values outside the histogram range or non-finite are ignored."""
        if not (math.isfinite(f0_hz) and f0_hz > 0.0):
            return
        log_f0 = math.log2(f0_hz)
        if not self._log_min <= log_f0 < self._log_max:
            return
        self._hist *= self._decay
        index = min(int((log_f0 - self._log_min) * self._bins_per_octave), self._hist.size - 1)
        self._hist[index] += 1.0
        self._weight = self._weight * self._decay + 1.0
        self._dirty = True

    def value(self) -> float:
        """Return the current percentile in Hz, or NaN before any observation."""
        if self._dirty:
            cumulative = np.cumsum(self._hist)
            target = self.percentile / 100.0 * cumulative[-1]
            index = int(np.searchsorted(cumulative, target))
            index = min(index, self._hist.size - 1)
            below = cumulative[index] - self._hist[index]
            fraction = (target - below) / self._hist[index] if self._hist[index] > 0 else 0.5
            log_f0 = self._log_min + (index + fraction) / self._bins_per_octave
            self._value = 2.0 ** log_f0
            self._dirty = False
        return self._value


def _build_face_maps() -> Tuple[np.ndarray, np.ndarray]:
    """Return (52, 4) blendshape and (15, 4) AU maps from drivers (blink, smile, brow, press)."""
    blend = {
        0: {"eyeBlinkLeft": 1.0, "eyeBlinkRight": 1.0},
        1: {
            "mouthSmileLeft": 1.0, "mouthSmileRight": 1.0, "cheekSquintLeft": 0.6,
            "cheekSquintRight": 0.6, "eyeSquintLeft": 0.3, "eyeSquintRight": 0.3,
            "mouthDimpleLeft": 0.2, "mouthDimpleRight": 0.2,
        },
        2: {"browInnerUp": 1.0, "browOuterUpLeft": 0.7, "browOuterUpRight": 0.7},
        3: {"mouthPressLeft": 1.0, "mouthPressRight": 1.0, "mouthShrugLower": 0.5},
    }
    units = {
        0: {"AU45": 1.0},
        1: {"AU06": 0.6, "AU07": 0.3, "AU12": 1.0, "AU14": 0.2},
        2: {"AU01": 1.0, "AU02": 0.7},
        3: {"AU17": 0.5, "AU24": 1.0},
    }
    blend_map = np.zeros((len(ARKIT_BLENDSHAPES), 4))
    unit_map = np.zeros((len(ACTION_UNITS), 4))
    for driver, weights in blend.items():
        for name, w in weights.items():
            blend_map[BLENDSHAPE_INDEX[name], driver] = w
    for driver, weights in units.items():
        for name, w in weights.items():
            unit_map[ACTION_UNIT_INDEX[name], driver] = w
    return blend_map, unit_map


_BLEND_MAP, _UNIT_MAP = _build_face_maps()


def _raised_cosine(x: float) -> float:
    """Map 0..1 to 0..1 along a half cosine; clamp outside."""
    x = min(max(x, 0.0), 1.0)
    return 0.5 - 0.5 * math.cos(math.pi * x)


class ProsodicPolicy:
    """
    Turn one :class:`FeatureFrame` per frame into one :class:`ListenerFrame`.

    Deterministic for a given ``cfg.seed``; :meth:`reset` restores the initial state and RNG.
    """

    def __init__(self, cfg: Optional[ProsodicListenerConfig] = None, frame_rate: float = 30.0):
        if not (math.isfinite(frame_rate) and frame_rate > 0.0):
            raise ValueError("frame_rate must be positive")
        self.cfg = cfg if cfg is not None else ProsodicListenerConfig()
        self.frame_rate = float(frame_rate)
        c = self.cfg
        dt = 1.0 / self.frame_rate
        self._dt = dt
        self._pitch = AdaptivePitchPercentile(
            c.low_pitch_percentile, c.pitch_memory * self.frame_rate, c.f0_floor_hz,
            c.f0_ceiling_hz, c.pitch_bins_per_octave,
        )
        self._warmup_frames = c.pitch_warmup * self.frame_rate
        self._pitch_stats = RunningPitchZ(1.0 - math.exp(-dt / c.pitch_memory),
                                          initial_var=0.04, min_var=0.0025)
        self._energy_alpha = 1.0 - math.exp(-dt / max(c.energy_smoothing, _EPS))
        self._z_alpha = 1.0 - math.exp(-dt / max(c.pitch_smoothing, _EPS))
        self._slow_alpha = 1.0 - math.exp(-dt / c.engagement_time_constant)  # engagement, arousal
        decay = math.exp(-dt / c.drift_time_constant)
        self._drift_decay = decay
        # The low-pass shrinks the OU variance by tau / (tau + smoothing); compensate.
        boost = math.sqrt((c.drift_time_constant + c.drift_smoothing) / c.drift_time_constant)
        self._drift_gain = (
            np.asarray(c.drift_std, dtype=np.float64) * math.sqrt(1 - decay ** 2) * boost
        )
        self._drift_alpha = 1.0 - math.exp(-dt / max(c.drift_smoothing, _EPS))
        self._nod_peak = {
            cycles: self._nod_envelope_peak(cycles) for cycles in range(1, c.nod_max_cycles + 1)
        }
        self._blink_mean_gap = max(60.0 / c.blink_rate_per_min - c.blink_min_interval, _EPS)
        self.reset()

    def reset(self) -> None:
        """Restore the initial state, including the random generator."""
        c = self.cfg
        self._rng = np.random.default_rng(c.seed)
        self._n = 0
        self._pitch.reset()
        self._floor = c.speech_min_db - c.speech_margin_db
        self._silence = math.inf
        self._spurt = 0.0
        self._pause_cue_armed = False
        self._low_run = 0.0
        self._low_gap = 0.0
        self._low_prior_speech = 0.0
        self._low_fired = False
        self._pending: Optional[Tuple[float, float]] = None
        self._last_backchannel = -math.inf
        self._nod_start = -math.inf
        self._nod_duration = 0.0
        self._nod_amplitude = 0.0
        self._nod_cycles = 1
        self._nod_intensity = 0.0
        self._smile_start = -math.inf
        self._smile_intensity = 0.0
        self._blink_start = -math.inf
        self._next_blink = self._draw_blink_gap()
        self._drift_state = np.zeros(3)
        self._drift = np.zeros(3)
        self._tilt_side = 1.0 if self._rng.random() < 0.5 else -1.0
        self._energy = 0.0
        self._pitch_stats.reset()
        self._z = 0.0
        self._pitch_var = 0.0
        self._engagement = 0.0

    @property
    def time(self) -> float:
        """Return the time in seconds of the next frame, counted from reset."""
        return self._n * self._dt

    @property
    def low_pitch_threshold_hz(self) -> float:
        """Return the speaker's current low-pitch percentile in Hz (NaN before any voicing)."""
        return self._pitch.value()

    def _draw_blink_gap(self) -> float:
        return self.cfg.blink_min_interval + float(self._rng.exponential(self._blink_mean_gap))

    def _sanitize(self, feat: FeatureFrame) -> Tuple[float, float, float]:
        energy = float(feat.energy_db)
        energy = min(max(energy, -100.0), 0.0) if math.isfinite(energy) else -100.0
        f0 = float(feat.f0_hz)
        if not (math.isfinite(f0) and self.cfg.f0_floor_hz <= f0 < self.cfg.f0_ceiling_hz):
            f0 = 0.0
        voicing = float(feat.voicing)
        voicing = min(max(voicing, 0.0), 1.0) if math.isfinite(voicing) else 0.0
        return energy, f0, voicing

    def _request(self, now: float, start: float, intensity: float) -> None:
        """Schedule a nod at ``start`` unless one is pending or one started in the refractory."""
        if self._pending is None and now - self._last_backchannel >= self.cfg.refractory - _EPS:
            self._pending = (start, intensity)

    def _nod_intensity_draw(self, base: float) -> float:
        jitter = self.cfg.nod_intensity_jitter * float(self._rng.standard_normal())
        return min(max(base + 0.3 * self._energy + jitter, 0.2), 1.0)

    def _update_speech(self, t: float, energy: float) -> Tuple[bool, float]:
        c = self.cfg
        if energy < self._floor:
            self._floor = energy
        else:
            self._floor = min(self._floor + c.noise_floor_rise_db_per_s * self._dt, energy)
        threshold = max(c.speech_min_db, self._floor + c.speech_margin_db)
        speech = energy > threshold
        if speech:
            if self._silence > c.intra_pause_bridge:
                self._spurt = 0.0
                self._pause_cue_armed = True
            self._spurt += self._dt
            self._silence = 0.0
        else:
            self._silence += self._dt
            if self._pause_cue_armed and self._silence >= c.pause_min_duration - _EPS:
                self._pause_cue_armed = False
                if self._spurt >= c.pause_min_prior_speech - _EPS:
                    self._request(t, t + c.pause_response_delay, self._nod_intensity_draw(0.6))
        return speech, threshold

    def _update_low_pitch(self, t: float, voiced: bool, f0: float) -> None:
        c = self.cfg
        if not voiced:
            self._low_gap += self._dt
            if self._low_gap > c.low_pitch_gap_tolerance + _EPS:
                self._low_run = 0.0
                self._low_fired = False
            return
        threshold = self._pitch.value() if self._pitch.weight >= self._warmup_frames else math.nan
        if f0 < threshold:
            if self._low_run == 0.0:
                self._low_prior_speech = self._spurt - self._dt
            self._low_run += self._dt
            self._low_gap = 0.0
            if not self._low_fired and self._low_run >= c.low_pitch_min_duration - _EPS:
                self._low_fired = True
                if self._low_prior_speech >= c.min_prior_speech - _EPS:
                    self._request(t, t + c.response_delay, self._nod_intensity_draw(0.5))
        else:
            self._low_run = 0.0
            self._low_fired = False
        self._pitch.update(f0)

    def _update_pitch_stats(self, voiced: bool, f0: float) -> None:
        z_target = self._pitch_stats.update(f0) if voiced else 0.0
        self._z += self._z_alpha * (z_target - self._z)
        self._pitch_var += self._slow_alpha * (abs(z_target) - self._pitch_var)

    def _start_events(self, t: float) -> List[BackchannelEvent]:
        c = self.cfg
        events: List[BackchannelEvent] = []
        nod_active = t < self._nod_start + self._nod_duration
        if self._pending is None or nod_active or t < self._pending[0] - _EPS:
            return events
        intensity = self._pending[1]
        self._pending = None
        cycles = int(self._rng.integers(1, c.nod_max_cycles + 1))
        self._nod_start = t
        self._nod_cycles = cycles
        self._nod_duration = c.nod_duration * (1.0 + 0.5 * (cycles - 1))
        self._nod_amplitude = c.nod_amplitude * intensity
        self._nod_intensity = intensity
        self._last_backchannel = t
        events.append(BackchannelEvent("nod", intensity, self._nod_duration))
        if self._rng.random() < c.smile_probability and t >= self._smile_start + c.smile_duration:
            self._smile_start = t
            self._smile_intensity = min(c.smile_intensity * (0.6 + 0.8 * intensity), 1.0)
            events.append(BackchannelEvent("smile", self._smile_intensity, c.smile_duration))
        if self._rng.random() < c.nod_blink_probability and t >= self._blink_start + 0.5:
            self._next_blink = t
        return events

    def _nod_shape(self, cycles: int, u: float | np.ndarray) -> float | np.ndarray:
        """Return the unnormalized nod profile: damped down-up bumps over ``u`` in 0..1."""
        return np.sin(np.pi * cycles * u) ** 2 * np.exp(-self.cfg.nod_damping * u)

    def _nod_envelope_peak(self, cycles: int) -> float:
        return float(np.max(self._nod_shape(cycles, np.linspace(0.0, 1.0, 1001))))

    def _nod_pitch(self, t: float) -> Tuple[float, float]:
        """Return the nod's pitch offset and lip-press level at time ``t``."""
        u = (t - self._nod_start) / self._nod_duration if self._nod_duration > 0 else 1.0
        if not 0.0 <= u < 1.0:
            return 0.0, 0.0
        pitch = self._nod_amplitude * float(self._nod_shape(self._nod_cycles, u))
        pitch /= self._nod_peak[self._nod_cycles]
        return pitch, 0.3 * self._nod_intensity * math.sin(math.pi * u)

    def _blink(self, t: float) -> float:
        c = self.cfg
        if t >= self._next_blink - _EPS:
            self._blink_start = t
            self._next_blink = t + self._draw_blink_gap()
        u = (t - self._blink_start) / c.blink_duration
        if not 0.0 <= u < 1.0:
            return 0.0
        x = 0.5 * u / 0.35 if u < 0.35 else 0.5 + 0.5 * (u - 0.35) / 0.65
        return math.sin(math.pi * x)

    def _smile(self, t: float) -> float:
        c = self.cfg
        tau = t - self._smile_start
        if not 0.0 <= tau < c.smile_duration:
            return 0.0
        attack = min(0.3, 0.5 * c.smile_duration)
        release = min(0.5, 0.5 * c.smile_duration)
        level = min(tau / attack, (c.smile_duration - tau) / release, 1.0)
        return self._smile_intensity * _raised_cosine(level)

    def step(self, feat: FeatureFrame) -> ListenerFrame:
        """Consume the features of one frame; return the listener's behaviour at that frame."""
        c = self.cfg
        t = self._n * self._dt
        self._n += 1
        energy, f0, voicing = self._sanitize(feat)

        speech, threshold = self._update_speech(t, energy)
        voiced = speech and f0 > 0.0 and voicing >= c.voicing_threshold
        self._update_low_pitch(t, voiced, f0)
        self._update_pitch_stats(voiced, f0)
        level = min(max((energy - threshold) / c.energy_range_db, 0.0), 1.0)
        self._energy += self._energy_alpha * (level - self._energy)
        self._engagement += self._slow_alpha * ((1.0 if speech else 0.0) - self._engagement)

        events = self._start_events(t)
        nod, press = self._nod_pitch(t)
        blink = self._blink(t)
        smile = self._smile(t)
        noise = self._drift_gain * self._rng.standard_normal(3)
        self._drift_state = self._drift_state * self._drift_decay + noise
        self._drift += self._drift_alpha * (self._drift_state - self._drift)

        roll = (
            self._drift[0]
            + self._tilt_side * (c.attentive_tilt * self._engagement + c.pitch_roll_gain * self._z)
        )
        pitch = (
            self._drift[1] + c.energy_pitch_gain * self._energy
            - c.pitch_follow_gain * self._z + nod
        )
        yaw = self._drift[2]
        limit = c.max_abs_angle

        brow = c.brow_gain * max(self._z - 0.5, 0.0)
        drivers = np.array([blink, smile, brow, press])
        blendshapes = np.clip(_BLEND_MAP @ drivers, 0.0, 1.0).astype(np.float32)
        action_units = np.clip(_UNIT_MAP @ drivers, 0.0, 1.0).astype(np.float32)

        arousal = -0.3 + 0.6 * self._energy + 0.4 * math.tanh(self._pitch_var)
        valence = 0.05 + 0.2 * self._engagement + 0.6 * smile
        warm = min(self._pitch.weight / max(self._warmup_frames, 1.0), 1.0)
        return ListenerFrame(
            roll=min(max(roll, -limit), limit),
            pitch=min(max(pitch, -limit), limit),
            yaw=min(max(yaw, -limit), limit),
            blendshapes=blendshapes,
            action_units=action_units,
            valence=min(max(valence, -1.0), 1.0),
            arousal=min(max(arousal, -1.0), 1.0),
            expression="happy" if smile >= 0.25 else "neutral",
            confidence=0.2 + 0.3 * self._engagement + 0.3 * warm,
            backchannels=tuple(events),
        )


class ProsodicListener(StreamingListenerModel):
    """The embedded default model: streaming features followed by :class:`ProsodicPolicy`."""

    name = "prosodic"

    def __init__(
        self,
        config: Optional[ProsodicListenerConfig] = None,
        frame_rate: float = 30.0,
        sample_rate: int = 16000,
    ) -> None:
        self.config = config if config is not None else ProsodicListenerConfig()
        self.feature_config = FeatureConfig(sample_rate=sample_rate, frame_rate=frame_rate)
        self.sample_rate = self.feature_config.sample_rate
        self._extractor = StreamingFeatureExtractor(self.feature_config)
        self.policy = ProsodicPolicy(self.config, self.frame_rate)

    @property
    def hop_length(self) -> int:
        """Return the number of samples consumed per frame."""
        return self.feature_config.hop_length

    def reset(self) -> None:
        """Forget the feature history and the policy state (the RNG restarts from the seed)."""
        self._extractor.reset()
        self.policy.reset()

    def step(self, hop: np.ndarray, context: StepContext = EMPTY_CONTEXT) -> ListenerFrame:
        """Consume one hop of audio; return the listener frame for it."""
        return self.policy.step(self._extractor.step(self.check_hop(hop)))

    def run(self, audio: np.ndarray, side: Optional[SideInputs] = None) -> List[ListenerFrame]:
        """Reset, then return one frame per complete hop, using batched feature extraction."""
        samples = self.as_audio(audio)
        self.reset()
        batch = extract_features(samples, self.feature_config)
        return [self.policy.step(batch.frame(i)) for i in range(len(batch))]
