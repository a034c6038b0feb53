"""
The embedded speaking motion: the robot's head moves with the prosody of its own speech.

Speakers move their heads with their voice: nods land on stressed, loud syllables, the head
rises with the pitch, and it turns a little at the start of a phrase (Munhall et al., "Visual
prosody and speech intelligibility", Psychol. Sci. 15 (2004); Busso et al., "Rigid head motion
in expressive speech animation", IEEE TASLP 15 (2007)). :class:`ProsodicSpeaker` turns these
findings into rules, stepped hop by hop on the robot's own speech (its TTS output) with the same
features as the listener. It is a :class:`StreamingListenerModel`, so the engine can step it
like any listener model, and a learned speaking checkpoint can replace it.
"""

from __future__ import annotations

from dataclasses import dataclass
import math
from typing import List, Optional

import numpy as np

from listener_head_ros.face import BLENDSHAPE_INDEX
from listener_head_ros.features import (
    extract_features, FeatureConfig, FeatureFrame, StreamingFeatureExtractor)
from listener_head_ros.models.base import (
    EMPTY_CONTEXT, ListenerFrame, SideInputs, StepContext, StreamingListenerModel)
from listener_head_ros.models.prosodic import RunningPitchZ
from listener_head_ros.schema import setting


@dataclass(frozen=True)
class ProsodicSpeakerConfig:
    """Tunables of the rule-based speaking motion; times in seconds, angles in radians."""

    speech_min_db: float = setting(-45.0, 'Own speech is louder than this, dBFS.',
                                   (-100.0, 0.0))
    beat_rise_db: float = setting(
        6.0, 'A stressed syllable: loudness this far above its 0.3 s average, dB.', (0.5, 40.0))
    beat_amplitude: float = setting(0.05, 'Peak pitch of a beat nod, rad.', (0.0, 0.3))
    beat_duration: float = setting(0.35, 'Duration of a beat nod, s.', (0.1, 2.0))
    beat_refractory: float = setting(0.45, 'Shortest time between beat nods, s.', (0.1, 5.0))
    pitch_gain: float = setting(0.02, 'Head rise per z-score of the own pitch, rad.',
                                (0.0, 0.2))
    phrase_pause: float = setting(0.3, 'A pause this long starts a new phrase, s.', (0.05, 5.0))
    phrase_yaw: float = setting(0.12, 'Largest head turn at a phrase start, rad.', (0.0, 0.5))
    motion_time_constant: float = setting(
        0.25, 'Low-pass time constant of the pitch-following and turning motion, s.',
        (0.01, 5.0))
    jaw_gain: float = setting(0.6, 'jawOpen at full loudness (0 dBFS - speech_min_db).',
                              (0.0, 1.0))
    seed: int = setting(0, 'Seed of the phrase-start turns.', (0, 2**31 - 1))


# Time constants of the loudness averages that tell a stressed syllable from the rest.
_FAST_ENERGY, _SLOW_ENERGY = 0.03, 0.3
# Own-pitch statistics are kept over about this much voiced speech, starting from a spread of
# one semitone and never narrower than half a semitone (variances in octaves squared).
_PITCH_MEMORY, _PITCH_VAR, _PITCH_MIN_VAR = 3.0, 1.0 / 144, 0.25 / 144


class ProsodicSpeaker(StreamingListenerModel):
    """Rule-based head motion of the robot's own speech: beat nods, pitch rise, phrase turns."""

    name = 'prosodic_speaker'

    def __init__(self, config: Optional[ProsodicSpeakerConfig] = None,
                 frame_rate: float = 30.0, sample_rate: int = 16000) -> None:
        self.config = config if config is not None else ProsodicSpeakerConfig()
        self.feature_config = FeatureConfig(sample_rate=sample_rate, frame_rate=frame_rate)
        self.sample_rate = self.feature_config.sample_rate
        self._extractor = StreamingFeatureExtractor(self.feature_config)
        self._dt = dt = 1.0 / self.frame_rate
        self._fast_alpha = -math.expm1(-dt / _FAST_ENERGY)
        self._slow_alpha = -math.expm1(-dt / _SLOW_ENERGY)
        self._motion_alpha = -math.expm1(-dt / self.config.motion_time_constant)
        self._pitch_stats = RunningPitchZ(-math.expm1(-dt / _PITCH_MEMORY),
                                          initial_var=_PITCH_VAR, min_var=_PITCH_MIN_VAR)
        self.reset()

    @property
    def hop_length(self) -> int:
        """Return the number of samples consumed per frame."""
        return self.feature_config.hop_length

    def reset(self) -> None:
        """Forget the features, the statistics and the motion; the turns restart from the seed."""
        self._extractor.reset()
        self._rng = np.random.default_rng(self.config.seed)
        self._fast = self._slow = -100.0
        self._pitch_stats.reset()
        self._silence = math.inf
        self._since_beat = math.inf
        self._yaw_target = 0.0
        self._pose = np.zeros(3)

    def step(self, hop: np.ndarray, context: StepContext = EMPTY_CONTEXT) -> ListenerFrame:
        """Consume one hop of the robot's speech; return the speaking frame for it."""
        return self._policy(self._extractor.step(self.check_hop(hop)))

    def run(self, audio: np.ndarray, side: Optional[SideInputs] = None) -> List[ListenerFrame]:
        """Reset, then return one frame per complete hop, using batched feature extraction."""
        samples = self.as_audio(audio)
        self.reset()
        batch = extract_features(samples, self.feature_config)
        return [self._policy(batch.frame(i)) for i in range(len(batch))]

    def _policy(self, feat: FeatureFrame) -> ListenerFrame:
        cfg, dt = self.config, self._dt
        energy = feat.energy_db if math.isfinite(feat.energy_db) else -100.0
        f0 = feat.f0_hz if math.isfinite(feat.f0_hz) and feat.f0_hz > 0 else 0.0
        self._fast += self._fast_alpha * (energy - self._fast)
        self._slow += self._slow_alpha * (energy - self._slow)
        speaking = energy > cfg.speech_min_db
        if speaking and self._silence >= cfg.phrase_pause:
            self._yaw_target = float(self._rng.uniform(-cfg.phrase_yaw, cfg.phrase_yaw))
        self._silence = 0.0 if speaking else self._silence + dt
        pitch_z = self._pitch_stats.update(f0) if speaking and f0 > 0 else 0.0
        self._since_beat += dt
        if (speaking and self._fast - self._slow > cfg.beat_rise_db
                and self._since_beat >= cfg.beat_refractory):
            self._since_beat = 0.0
        target = np.array([0.3 * self._yaw_target * pitch_z / 3.0,
                           -cfg.pitch_gain * pitch_z,
                           self._yaw_target if self._silence < cfg.phrase_pause else 0.0])
        self._pose += self._motion_alpha * (target - self._pose)
        beat = self._since_beat / cfg.beat_duration
        nod = cfg.beat_amplitude * math.sin(math.pi * beat) if beat < 1.0 else 0.0
        roll, pitch, yaw = self._pose + np.array([0.0, nod, 0.0])
        frame = ListenerFrame.neutral()
        loudness = (energy - cfg.speech_min_db) / max(-cfg.speech_min_db, 1e-9)
        frame.blendshapes[BLENDSHAPE_INDEX['jawOpen']] = cfg.jaw_gain * min(
            max(loudness, 0.0), 1.0)
        frame.roll, frame.pitch, frame.yaw = float(roll), float(pitch), float(yaw)
        frame.confidence = 0.5 if speaking else 0.0
        return frame
