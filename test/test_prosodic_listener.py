"""Behavioural tests of the embedded prosodic listener and the streaming model contract."""

import dataclasses
import math
from typing import List, Optional, Sequence, Tuple

import numpy as np
import pytest

from listener_head_ros.face import ACTION_UNITS, ARKIT_BLENDSHAPES, BLENDSHAPE_INDEX, EXPRESSIONS
from listener_head_ros.features import FeatureFrame
from listener_head_ros.models.base import ListenerFrame, StreamingListenerModel
from listener_head_ros.models.prosodic import (
    AdaptivePitchPercentile,
    ProsodicListener,
    ProsodicListenerConfig,
    ProsodicPolicy,
)

FPS = 30.0
DT = 1.0 / FPS
SPEECH_DB = -25.0
SILENCE_DB = -80.0
LOG_MEL = np.zeros(64, dtype=np.float32)

Feature = Tuple[float, float, float]  # energy_db, f0_hz, voicing


def contour(duration: float, f0: float = 200.0, wobble: float = 12.0) -> List[Feature]:
    """
    Return voiced speech whose pitch wobbles at 4 Hz around ``f0`` and ends on a peak.

    Each dip below the 26th percentile lasts about 65 ms, too short to cue a back-channel.
    """
    n = int(round(duration * FPS))
    t = (np.arange(n) - n) * DT
    return [(SPEECH_DB, float(f0 + wobble * math.cos(2 * math.pi * 4.0 * x)), 0.9) for x in t]


def flat(duration: float, f0: float) -> List[Feature]:
    """Return voiced speech at a constant pitch."""
    return [(SPEECH_DB, f0, 0.9)] * int(round(duration * FPS))


def silence(duration: float) -> List[Feature]:
    """Return a pause."""
    return [(SILENCE_DB, 0.0, 0.0)] * int(round(duration * FPS))


def drive(policy: ProsodicPolicy, feats: Sequence[Feature]) -> List[ListenerFrame]:
    """Step the policy over ``feats`` and return its frames."""
    return [policy.step(FeatureFrame(LOG_MEL, e, f, v)) for e, f, v in feats]


def event_times(frames: Sequence[ListenerFrame], kind: str = "nod") -> List[float]:
    """Return the times in seconds of the frames that start a ``kind`` event."""
    return [
        i * DT for i, fr in enumerate(frames) if any(ev.kind == kind for ev in fr.backchannels)
    ]


def nods(feats: Sequence[Feature], cfg: Optional[ProsodicListenerConfig] = None) -> List[float]:
    """Return the nod times of a fresh policy driven by ``feats``."""
    return event_times(drive(ProsodicPolicy(cfg, FPS), feats))


def assert_sane(frames: Sequence[ListenerFrame]) -> None:
    """Assert that every frame is finite and within the documented ranges."""
    for fr in frames:
        pose = np.array(fr.pose)
        assert np.all(np.isfinite(pose)) and np.all(np.abs(pose) <= 0.6)
        assert fr.blendshapes.shape == (len(ARKIT_BLENDSHAPES),)
        assert fr.action_units.shape == (len(ACTION_UNITS),)
        for arr in (fr.blendshapes, fr.action_units):
            assert np.all(np.isfinite(arr)) and arr.min() >= 0.0 and arr.max() <= 1.0
        assert -1.0 <= fr.valence <= 1.0 and -1.0 <= fr.arousal <= 1.0
        assert 0.0 <= fr.confidence <= 1.0
        assert fr.expression in EXPRESSIONS
        for ev in fr.backchannels:
            assert 0.0 <= ev.intensity <= 1.0 and ev.duration > 0.0


# Ward & Tsukahara rule ---------------------------------------------------------------------


def test_low_pitch_region_after_speech_cues_a_nod_700ms_later():
    times = nods(contour(1.0) + flat(0.15, 150.0) + contour(2.0))
    assert len(times) == 1
    cue_time = 1.0 + 0.11  # the low region has lasted 110 ms
    assert 0.65 <= times[0] - cue_time <= 0.75


def test_response_delay_is_a_parameter():
    cfg = ProsodicListenerConfig(response_delay=0.3)
    times = nods(contour(1.0) + flat(0.15, 150.0) + contour(2.0), cfg)
    assert len(times) == 1 and 0.25 <= times[0] - 1.11 <= 0.35


def test_low_pitch_region_shorter_than_110ms_does_not_cue():
    assert nods(contour(1.0) + flat(0.08, 150.0) + contour(2.0)) == []


def test_low_pitch_region_after_too_little_speech_does_not_cue():
    # 1.2 s of speech, then a pause too short of prior speech for the pause cue, then a new
    # stretch of speech whose low region comes too early (400 ms) or late enough (1 s).
    prefix = contour(1.2) + silence(1.0)
    assert nods(prefix + contour(0.4) + flat(0.15, 150.0) + contour(2.0)) == []
    assert len(nods(prefix + contour(1.0) + flat(0.15, 150.0) + contour(2.0))) == 1


def test_no_cue_within_800ms_of_the_previous_back_channel():
    first = contour(1.0) + flat(0.15, 150.0)  # cued at 1.1 s, nod at 1.8 s
    # Second region cued 0.36 s after the first nod: refractory, no second nod.
    assert len(nods(first + contour(0.9) + flat(0.15, 150.0) + contour(2.0))) == 1
    # Second region cued 1.06 s after the first nod: a second nod.
    times = nods(first + contour(1.6) + flat(0.15, 150.0) + contour(2.0))
    assert len(times) == 2 and 0.65 <= times[1] - (1.15 + 1.6 + 0.11) <= 0.75


def test_refractory_is_a_parameter():
    cfg = ProsodicListenerConfig(refractory=0.2)
    first = contour(1.0) + flat(0.15, 150.0)
    assert len(nods(first + contour(0.9) + flat(0.15, 150.0) + contour(2.0), cfg)) == 2


def test_steady_speech_without_low_regions_gets_no_nod():
    assert nods(contour(10.0)) == []


def test_silence_and_unvoiced_noise_get_no_nod():
    assert nods(silence(20.0)) == []
    assert nods([(SPEECH_DB, 0.0, 0.1)] * 300) == []


# Pause cue ---------------------------------------------------------------------------------


def test_pause_after_long_speech_cues_one_nod():
    times = nods(contour(2.0) + silence(5.0))
    assert len(times) == 1
    assert 0.45 <= times[0] - 2.0 <= 0.6


def test_pause_after_short_speech_or_short_pause_does_not_cue():
    assert nods(contour(1.0) + silence(3.0)) == []
    assert nods(contour(2.0) + silence(0.25) + contour(1.0)) == []


def test_pause_cue_duration_is_a_parameter():
    cfg = ProsodicListenerConfig(pause_min_prior_speech=0.5)
    assert len(nods(contour(1.0) + silence(3.0), cfg)) == 1


# Online pitch percentile -------------------------------------------------------------------


def test_percentile_estimator_matches_batch_percentile():
    f0 = np.exp(np.random.default_rng(1).normal(math.log(180.0), 0.15, 5000))
    est = AdaptivePitchPercentile(26.0, memory_frames=1e9)
    for value in f0:
        est.update(float(value))
    assert est.value() == pytest.approx(np.percentile(f0, 26.0), rel=0.016)
    est.update(math.nan)
    est.update(-5.0)
    est.update(1e6)
    assert est.weight == pytest.approx(5000.0, rel=1e-4)


def test_percentile_adapts_to_a_new_speaker():
    policy = ProsodicPolicy(None, FPS)
    male = contour(10.0, f0=120.0, wobble=8.0)
    drive(policy, male)
    male_p26 = np.percentile([f for _, f, _ in male], 26.0)
    assert policy.low_pitch_threshold_hz == pytest.approx(male_p26, rel=0.03)
    female = contour(15.0, f0=220.0, wobble=14.0)
    drive(policy, silence(1.0) + female)
    female_p26 = np.percentile([f for _, f, _ in female], 26.0)
    assert policy.low_pitch_threshold_hz == pytest.approx(female_p26, rel=0.03)


def test_low_region_is_judged_against_the_current_speaker():
    # 195 Hz is low for a 220 Hz speaker but far above a 120 Hz speaker's 26th percentile.
    male = contour(10.0, f0=120.0, wobble=8.0) + silence(1.0)  # pause-cue nod at ~10.5 s
    cue = flat(0.15, 195.0) + contour(2.0, f0=220.0, wobble=14.0)
    early = nods(male + contour(1.0, f0=220.0, wobble=14.0) + cue)
    late = nods(male + contour(15.0, f0=220.0, wobble=14.0) + cue)
    assert [t for t in early if t > 11.0] == []
    assert len([t for t in late if t > 11.0]) == 1


# Motion, face and affect -------------------------------------------------------------------


def quiet_config(**changes) -> ProsodicListenerConfig:
    """Return a config with drift and micro-motion off, so nods can be measured alone."""
    base = dict(
        drift_std=(0.0, 0.0, 0.0), energy_pitch_gain=0.0, pitch_follow_gain=0.0,
        pitch_roll_gain=0.0, attentive_tilt=0.0, nod_intensity_jitter=0.0,
    )
    base.update(changes)
    return ProsodicListenerConfig(**base)


def test_nod_is_a_smooth_downward_pitch_movement_scaled_by_intensity():
    policy = ProsodicPolicy(quiet_config(nod_max_cycles=1), FPS)
    frames = drive(policy, contour(1.0) + flat(0.15, 150.0) + contour(2.0))
    start = [i for i, fr in enumerate(frames) if fr.backchannels][0]
    nod = frames[start].backchannels[0]
    pitch = np.array([fr.pitch for fr in frames])
    assert np.all(pitch[:start] == 0.0)
    window = pitch[start:start + int(nod.duration * FPS) + 1]
    assert window.max() == pytest.approx(0.12 * nod.intensity, rel=0.25)
    assert window.min() >= 0.0 and abs(window[-1]) < 1e-3
    assert np.max(np.abs(np.diff(window))) < 0.05
    assert np.all(pitch[start + int(nod.duration * FPS) + 1:] == 0.0)


def test_idle_listener_is_calm_but_alive():
    frames = drive(ProsodicPolicy(None, FPS), silence(60.0))
    assert_sane(frames)
    assert event_times(frames) == []
    poses = np.array([fr.pose for fr in frames])
    assert np.all(np.abs(poses) < 0.25)
    assert poses[:, 2].std() > 0.005  # slow posture drift
    assert np.max(np.abs(np.diff(poses, axis=0))) < 0.02  # no jerks
    blink = np.array([fr.blendshapes[BLENDSHAPE_INDEX["eyeBlinkLeft"]] for fr in frames])
    onsets = np.count_nonzero((blink[1:] > 0.5) & (blink[:-1] <= 0.5))
    assert 7 <= onsets <= 30  # about 15 per minute
    assert all(fr.expression == "neutral" for fr in frames)


def test_smiles_accompany_nods_with_the_configured_probability():
    feats = (contour(1.0) + flat(0.15, 150.0) + contour(2.0)) * 3
    frames = drive(ProsodicPolicy(ProsodicListenerConfig(smile_probability=1.0), FPS), feats)
    assert event_times(frames, "smile") == event_times(frames, "nod") != []
    assert any(fr.expression == "happy" for fr in frames)
    smiling = max(frames, key=lambda fr: fr.action_units[ACTION_UNITS.index("AU12")])
    assert smiling.blendshapes[BLENDSHAPE_INDEX["mouthSmileLeft"]] > 0.2
    assert smiling.valence > 0.2
    frames = drive(ProsodicPolicy(ProsodicListenerConfig(smile_probability=0.0), FPS), feats)
    assert event_times(frames, "smile") == [] and event_times(frames, "nod") != []


def test_arousal_rises_with_loud_varied_speech():
    quiet = drive(ProsodicPolicy(None, FPS), silence(5.0))
    loud = drive(ProsodicPolicy(None, FPS), contour(5.0, wobble=60.0))
    assert loud[-1].arousal > quiet[-1].arousal + 0.3
    assert loud[-1].confidence > quiet[-1].confidence


def test_adversarial_features_keep_outputs_sane():
    rng = np.random.default_rng(7)
    specials = np.array([np.nan, np.inf, -np.inf, 0.0, -1.0, 1e9, -1e9, 150.0])
    feats = [(float(e), float(f), float(v)) for e, f, v in rng.choice(specials, (900, 3))]
    feats += [(-100.0, 0.0, 0.0)] * 300 + [(0.0, 400.0, 1.0)] * 300 + [(np.nan, 200.0, 1.0)] * 30
    frames = drive(ProsodicPolicy(None, FPS), feats)
    assert_sane(frames)


# Determinism -------------------------------------------------------------------------------


def random_features(seed: int, n: int = 600) -> List[Feature]:
    """Return plausible, randomly wandering speech and pause features."""
    rng = np.random.default_rng(seed)
    f0 = 180.0 * np.exp(np.cumsum(rng.normal(0.0, 0.02, n)))
    energy = np.where(rng.random(n) < 0.8, -25.0, -80.0)
    voicing = np.where(energy > -50.0, 0.9, 0.0)
    f0 = np.where(voicing > 0, f0, 0.0)
    return [(float(e), float(f), float(v)) for e, f, v in zip(energy, f0, voicing)]


def frame_arrays(frames: Sequence[ListenerFrame]) -> np.ndarray:
    """Flatten the numeric content of frames into one (T, k) array."""
    return np.array([
        np.concatenate([fr.pose, fr.blendshapes, fr.action_units,
                        [fr.valence, fr.arousal, fr.confidence]])
        for fr in frames
    ])


def test_reset_restores_the_initial_state_and_seeded_rng():
    feats = random_features(3) + contour(1.0) + flat(0.15, 150.0) + contour(2.0)
    policy = ProsodicPolicy(None, FPS)
    first = drive(policy, feats)
    policy.reset()
    second = drive(policy, feats)
    np.testing.assert_array_equal(frame_arrays(first), frame_arrays(second))
    assert [fr.backchannels for fr in first] == [fr.backchannels for fr in second]
    other = drive(ProsodicPolicy(ProsodicListenerConfig(seed=1), FPS), feats)
    assert not np.allclose(frame_arrays(first), frame_arrays(other))


def test_config_rejects_nonsense():
    with pytest.raises(ValueError):
        ProsodicListenerConfig(low_pitch_percentile=120.0)
    with pytest.raises(ValueError):
        ProsodicListenerConfig(nod_duration=0.0)
    with pytest.raises(ValueError):
        ProsodicPolicy(None, frame_rate=0.0)


# The full model on audio -------------------------------------------------------------------


def voice(f0: np.ndarray, sample_rate: int = 16000, level: float = 0.1) -> np.ndarray:
    """Synthesize a buzzy harmonic voice following the per-sample pitch track ``f0``."""
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    wave = sum(np.sin(k * phase) / k for k in range(1, 6))
    return (level * wave * (f0 > 0)).astype(np.float32)


def pitch_track(segments: Sequence[Tuple[float, float]], sample_rate: int = 16000) -> np.ndarray:
    """Return a per-sample f0 track from (duration, f0) segments with a 4 Hz wobble."""
    parts = []
    for duration, f0 in segments:
        t = np.arange(int(duration * sample_rate)) / sample_rate
        parts.append(np.where(f0 > 0, f0 + 0.06 * f0 * np.cos(2 * np.pi * 4 * t), 0.0))
    return np.concatenate(parts)


def test_end_to_end_nod_after_low_pitch_in_audio():
    model = ProsodicListener()
    audio = voice(pitch_track([(1.5, 200.0), (0.25, 140.0), (2.0, 200.0)]))
    frames = model.run(audio)
    assert_sane(frames)
    dt = model.hop_length / model.sample_rate
    times = [i * dt for i, fr in enumerate(frames) if fr.backchannels]
    assert len(times) == 1 and 2.2 <= times[0] <= 2.5


def test_streaming_steps_equal_batched_run():
    model = ProsodicListener(ProsodicListenerConfig(smile_probability=0.5, seed=4))
    rng = np.random.default_rng(0)
    audio = np.concatenate([
        voice(pitch_track([(1.5, 200.0), (0.25, 140.0), (1.0, 210.0), (0.6, 0.0)])),
        voice(pitch_track([(2.0, 180.0), (0.8, 0.0)])),
        0.01 * rng.standard_normal(4000).astype(np.float32),
    ])
    batched = model.run(audio)
    model.reset()
    hop = model.hop_length
    streamed = [model.step(audio[i:i + hop]) for i in range(0, audio.size - hop + 1, hop)]
    assert len(streamed) == len(batched) == audio.size // hop
    np.testing.assert_allclose(frame_arrays(streamed), frame_arrays(batched), atol=1e-6)
    assert [fr.backchannels for fr in streamed] == [fr.backchannels for fr in batched]
    assert [fr.expression for fr in streamed] == [fr.expression for fr in batched]
    assert any(fr.backchannels for fr in batched)


@pytest.mark.parametrize("kind", ["white", "square", "dc", "nan", "silence", "huge"])
def test_adversarial_audio_keeps_outputs_sane(kind):
    model = ProsodicListener()
    hop = model.hop_length
    n = 90 * hop
    rng = np.random.default_rng(11)
    t = np.arange(n) / model.sample_rate
    signals = {
        "white": 0.5 * rng.standard_normal(n),
        "square": np.sign(np.sin(2 * np.pi * 150.0 * t)),
        "dc": 0.7 + 0.001 * rng.standard_normal(n),
        "nan": np.where(rng.random(n) < 0.5, np.nan, 0.3 * rng.standard_normal(n)),
        "silence": np.zeros(n),
        "huge": 1e6 * rng.standard_normal(n),
    }
    audio = signals[kind].astype(np.float32)
    if kind == "nan":
        sanitized = np.where(np.isfinite(audio), audio, 0.0).astype(np.float32)
        assert_sane(model.run(sanitized))
    assert_sane(model.run(audio))
    model.reset()
    assert_sane([model.step(audio[i:i + hop]) for i in range(0, n, hop)])


def test_step_rejects_a_wrong_hop_length():
    model = ProsodicListener()
    with pytest.raises(ValueError):
        model.step(np.zeros(model.hop_length + 1, dtype=np.float32))


def test_model_properties():
    model = ProsodicListener(frame_rate=25.0)
    assert model.name == "prosodic" and model.sample_rate == 16000
    assert model.hop_length == 640 and model.frame_rate == pytest.approx(25.0)


# The base-class contract -------------------------------------------------------------------


class _CountingModel(StreamingListenerModel):
    """Emit the running sum of all samples heard as the pitch."""

    name = "counting"

    def __init__(self) -> None:
        self.total = 0.0

    @property
    def hop_length(self) -> int:
        return 4

    def reset(self) -> None:
        self.total = 0.0

    def step(self, hop: np.ndarray, context=None) -> ListenerFrame:
        self.total += float(np.sum(self.check_hop(hop)))
        return dataclasses.replace(ListenerFrame.neutral(), pitch=self.total)


def test_default_run_resets_and_steps_every_complete_hop():
    model = _CountingModel()
    model.step(np.ones(4, dtype=np.float32))
    audio = np.ones(10, dtype=np.float32)
    audio[1] = np.nan
    frames = model.run(audio)
    assert [fr.pitch for fr in frames] == [3.0, 7.0]
    assert model.frame_rate == pytest.approx(4000.0)
    neutral = ListenerFrame.neutral()
    assert neutral.pose == (0.0, 0.0, 0.0) and neutral.expression == "neutral"
    assert neutral.backchannels == ()
