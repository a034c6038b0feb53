"""
Synthetic REACT 2025: the release layout, with a planted, causal and stochastic listener.

:func:`generate_corpus` writes a corpus in the layout that
:mod:`listener_head_ros.data.react2025` parses (``{train,val,test}/{audio,facial-attributes,
coefficients}/{speaker,listener}/session<k>/clip<c>.{wav,npy}``), plus ``mean_face.npy`` /
``std_face.npy`` (the mean and std of every listener's coefficients), the **oracle**
``oracle/test/{facial-attributes,coefficients}/session<k>/clip<c>.npy`` (``(S, T, 25|58)``:
``oracle_samples`` reactions to that test clip drawn afresh from the true process) and
``synthetic_truth.json`` (every session's script and every clip's voice and coin flips).
Wavs are PCM-16 at :attr:`SyntheticReactConfig.sample_rate` (44.1 kHz by default, so the
parser resamples) with ``channels`` channels; facial tracks are 30 fps float32.

Sessions.  Every session has a **script**: a clip length (``clip_seconds``, or
``short_clip_seconds`` for the ``short_sessions`` of each split, under 100 facial frames) and
a sequence of utterances, each of 1..3 phrases separated by ``pause_seconds`` and followed by
``gap_seconds`` of silence.  Each phrase has a loudness level (``phrase_level``, times
``emphasis_gain`` for the ``emphasis_probability`` of emphasised phrases).  All speaker
clips of a session read the same script, with the same timing and loudness pattern, each in
its own voice (base f0 uniform in ``f0_hz``, gain uniform within ``+-level_jitter_db``), so
every listener of a session is an appropriate reaction to each of its speaker clips.  A
phrase is :func:`~listener_head_ros.data.synthetic_iemocap.phrase_audio` of the IEMOCAP
generator (harmonic source, accented declining f0, syllable envelope): the last phrase of an
utterance ends with an f0 fall, the others with a continuation rise, so an utterance's end
is audible when it happens; the listener's own wav is a -65 dBFS noise floor (it does not
speak).

Planted listener reaction.  The listener's face at facial frame ``j`` (``t = j / 30`` s) is a
function of the speaker's audio up to ``t`` (every cue acts at least 200 ms later) plus
randomness:

- **smile**: after each utterance end, with probability ``smile_probability`` (a coin flip
  that the audio cannot predict), a smooth bump (:class:`Bump`: ``smile``, 300 ms after the
  end, 0.3 s rise, 1.2 s hold, 0.6 s fall) raises the AU6 and AU12 logits by 2.5 and 3.5,
  valence's pre-tanh value by 1.0 and the Happy logit by 3.0;
- **brow raise**: 200 ms after each emphasised phrase's onset (its loudness is heard from its
  first frames), with probability ``brow_probability``, the bump ``brow`` raises the AU1 and
  AU2 logits by 3.0 and the Surprise logit by 1.5;
- **arousal** follows the speaker's loudness: the script's relative phrase level (0 in
  silence, 1 for the loudest emphasised phrase), delayed by ``arousal_lag_seconds`` and
  smoothed by a causal exponential filter of time constant ``arousal_smoothing_seconds``,
  adds 1.5 times itself to arousal's pre-tanh value (bias -0.5);
- **nod**: after each phrase end that another phrase of the utterance follows, with
  probability ``nod_probability``, the rotation ``rot_x`` (pitch; positive pitches the head
  down) moves by the IEMOCAP generator's
  :class:`~listener_head_ros.data.synthetic_iemocap.PlantedResponse` ``nod`` (8 degrees
  down, then back up, 1 s, 300 ms after the end);
- the expression coefficients follow the AUs: ``mouthSmileLeft/Right`` follow AU12,
  ``cheekSquintLeft/Right`` AU6, ``browInnerUp`` AU1 and ``browOuterUpLeft/Right`` AU2
  (0.6 times the AU's 0..1 value, in the ARKit column order that
  :data:`listener_head_ros.face.ARKIT_BLENDSHAPES` gives); ``jawOpen`` (AU26) and the lips
  (AU25) stay at rest.

Everything else is persistent noise: every channel's latent value is a per-clip constant
(the listener's identity, ``identity_scale`` times the channel's noise std) plus a stationary
AR(1) process (:func:`~listener_head_ros.data.synthetic_iemocap.ar1_noise`, coefficient
``noise_phi`` per facial frame): ``au_noise`` on the AU and expression logits, ``affect_noise``
on valence and arousal, ``coefficient_noise`` on the 52 expression coefficients,
``pose_noise`` on rotation (radians) and translation.  Values stay in their ranges: AU =
sigmoid(logit) (rest logit -2.0, about 0.12), valence and arousal = tanh(...), the
8 expression probabilities a softmax (Neutral's rest logit 1.5, the others' 0); the rotation
rests at FaceVerse's frontal
:data:`~listener_head_ros.streams.FACEVERSE_FRONTAL_ROTATION`, the translation at 0.

The speaker's own face (the 'Mime' baseline's input, never a training input) has the same
noise, and a talking mouth: while it speaks, the AU25 and AU26 logits rise by 4.0 and 3.5
times its own loudness (the phrase level times its clip's gain), and ``mouthLowerDown*`` and
``jawOpen`` follow AU25 and AU26 as above.

Oracle.  For every test dyad, ``oracle_samples`` listener reactions drawn from the same
process given the same script: fresh identity, fresh coin flips, fresh noise.  The dyad's own
listener is one more draw of it, and so is every other listener of its session.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass, field, replace
import json
import math
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import soundfile as sf

from listener_head_ros.data.react2025 import (
    FACIAL_FPS, MEAN_FACE_FILE, ORACLE_DIR, SPLITS, STD_FACE_FILE)
from listener_head_ros.data.synthetic_iemocap import (
    ar1_noise, phrase_audio, PlantedResponse, SyntheticConfig)
from listener_head_ros.face import BLENDSHAPE_INDEX, REACT_ACTION_UNITS, REACT_EXPRESSIONS
from listener_head_ros.streams import (
    COEFFICIENTS, EXPRESSION_COLUMNS, FACEVERSE_FRONTAL_ROTATION, ROTATION_COLUMNS)

TRUTH_FILE = 'synthetic_truth.json'
_AMPLITUDE = 0.12  # waveform scale of a phrase of level 1 at 0 dB gain
_NOISE_FLOOR = 10.0 ** (-65.0 / 20.0)
_AU_REST = -2.0  # AU logit at rest
_EXPRESSION_REST = {'Neutral': 1.5}  # expression logits at rest (others 0)
_VALENCE_REST, _AROUSAL_REST = 0.1, -0.5  # pre-tanh values at rest
_SMILE = {'AU6': 2.5, 'AU12': 3.5}  # AU logit gains of a smile
_SMILE_VALENCE, _SMILE_HAPPY = 1.0, 3.0
_BROW = {'AU1': 3.0, 'AU2': 3.0}
_BROW_SURPRISE = 1.5
_AROUSAL_GAIN = 1.5
_SPEAKING = {'AU25': 4.0, 'AU26': 3.5}  # the speaker's own mouth, per unit of its loudness
_COUPLING = 0.6  # expression coefficient per unit of the AU it follows
_LINKS: Dict[str, Tuple[str, ...]] = {
    'AU1': ('browInnerUp',), 'AU2': ('browOuterUpLeft', 'browOuterUpRight'),
    'AU6': ('cheekSquintLeft', 'cheekSquintRight'),
    'AU12': ('mouthSmileLeft', 'mouthSmileRight'),
    'AU25': ('mouthLowerDownLeft', 'mouthLowerDownRight'), 'AU26': ('jawOpen',)}


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


@dataclass(frozen=True)
class Bump:
    """A smooth rise to 1, hold and fall back to 0, starting ``lag_seconds`` after its cue."""

    lag_seconds: float
    rise_seconds: float
    hold_seconds: float
    fall_seconds: float

    def shape(self, tau: np.ndarray) -> np.ndarray:
        """Return the bump ``tau`` seconds after its cue (0 before the lag and after the fall)."""
        u = np.asarray(tau, dtype=np.float64) - self.lag_seconds
        end = self.rise_seconds + self.hold_seconds + self.fall_seconds
        return np.minimum(_smoothstep(u / self.rise_seconds),
                          _smoothstep((end - u) / self.fall_seconds))


@dataclass(frozen=True)
class SyntheticReactConfig:
    """Size and parameters of a synthetic REACT 2025 corpus (seconds; see the module doc)."""

    sessions: Tuple[int, int, int] = (12, 2, 4)  # train, val, test
    short_sessions: Tuple[int, int, int] = (1, 0, 1)  # of those, with clips under 100 frames
    clips_per_session: int = 4
    clip_seconds: Tuple[float, float] = (20.0, 50.0)
    short_clip_seconds: Tuple[float, float] = (2.0, 3.2)
    sample_rate: int = 44100  # of the written wavs: the parser resamples
    channels: int = 1  # of the written wavs: the parser down-mixes
    lead_seconds: Tuple[float, float] = (0.3, 0.8)  # silence before the first utterance
    phrases_per_utterance: Tuple[int, int] = (1, 3)
    syllables_per_phrase: Tuple[int, int] = (3, 7)
    syllable_seconds: Tuple[float, float] = (0.12, 0.24)
    pause_seconds: Tuple[float, float] = (0.4, 0.7)  # between phrases: holds the nod's lag
    gap_seconds: Tuple[float, float] = (1.8, 3.0)  # after each utterance
    phrase_level: Tuple[float, float] = (0.7, 1.0)  # a plain phrase's loudness
    emphasis_probability: float = 0.25
    emphasis_gain: float = 2.2  # an emphasised phrase's loudness over a plain one's
    level_jitter_db: float = 1.5  # each clip's gain: uniform in +-this
    f0_hz: Tuple[float, float] = (100.0, 230.0)  # each clip's base pitch
    smile: Bump = Bump(0.3, 0.3, 1.2, 0.6)  # after each utterance end
    smile_probability: float = 0.6
    brow: Bump = Bump(0.2, 0.2, 0.5, 0.4)  # after each emphasised phrase's onset
    brow_probability: float = 1.0
    nod: PlantedResponse = PlantedResponse('pitch', 'phrase_end', 0.3, 1.0, 8.0)  # degrees
    nod_probability: float = 0.8
    arousal_lag_seconds: float = 0.2
    arousal_smoothing_seconds: float = 0.5
    noise_phi: float = 0.9  # AR(1) coefficient per facial frame
    au_noise: float = 0.4  # std of the AU and expression logits' noise
    affect_noise: float = 0.1  # of valence and arousal (pre-tanh)
    coefficient_noise: float = 0.03  # of the 52 expression coefficients
    pose_noise: float = 0.01  # of rotation (rad) and translation
    identity_scale: float = 0.5  # per-clip constant offsets, in units of each noise std
    oracle_samples: int = 10
    seed: int = 0

    def __post_init__(self) -> None:
        if (len(self.sessions) != len(SPLITS) or len(self.short_sessions) != len(SPLITS)
                or any(s < 0 for s in self.short_sessions)
                or any(n < 1 or s > n for n, s in zip(self.sessions, self.short_sessions))):
            raise ValueError(f'sessions and short_sessions need one count per split {SPLITS}, '
                             f'sessions >= 1 and 0 <= short_sessions <= sessions')
        if self.clips_per_session < 1 or self.oracle_samples < 1 or self.channels < 1:
            raise ValueError('clips_per_session, oracle_samples and channels must be >= 1')
        if min(self.short_clip_seconds[0], self.clip_seconds[0]) < 1.5:
            raise ValueError('clips must be at least 1.5 s long')
        if self.pause_seconds[0] < self.nod.lag_seconds:
            raise ValueError('pause_seconds must hold the nod lag')
        for p in (self.smile_probability, self.brow_probability, self.nod_probability,
                  self.emphasis_probability):
            if not 0.0 <= p <= 1.0:
                raise ValueError(f'probabilities must lie in [0, 1], not {p}')
        if not 0.0 <= self.noise_phi < 1.0:
            raise ValueError('noise_phi must lie in [0, 1)')

    @property
    def loudest(self) -> float:
        """Return the loudest phrase level: an emphasised phrase at the top of the range."""
        return self.phrase_level[1] * self.emphasis_gain


SMALL = SyntheticReactConfig(sessions=(2, 1, 2), short_sessions=(1, 0, 0),
                             clips_per_session=3, clip_seconds=(5.0, 8.0), channels=2,
                             oracle_samples=4)
"""A corpus of 15 dyads that generates and prepares in seconds (tests, ``--small``)."""


@dataclass(frozen=True)
class Phrase:
    """One phrase of a script: when, how loud, and whether it ends its utterance."""

    onset: float
    end: float
    level: float  # loudness (emphasis included), before the clip's gain
    emphasised: bool
    final: bool  # the last phrase of its utterance: ends with an f0 fall
    syllables: int
    seed: int  # of phrase_audio: the same timing in every voice


@dataclass(frozen=True)
class SessionScript:
    """What every speaker of a session says: the clip length and the phrases."""

    split: str
    session: str
    seconds: float
    phrases: Tuple[Phrase, ...]

    @property
    def frames(self) -> int:
        """Return the clip's facial frame count."""
        return int(round(self.seconds * FACIAL_FPS))

    def times(self) -> np.ndarray:
        """Return the time (s) of each facial frame."""
        return np.arange(self.frames) / FACIAL_FPS

    def utterance_ends(self) -> List[float]:
        """Return the end of each utterance: its final phrase's end."""
        return [p.end for p in self.phrases if p.final]

    def phrase_ends(self) -> List[float]:
        """Return the ends of the phrases that another phrase of the utterance follows."""
        return [p.end for p in self.phrases if not p.final]

    def emphasis_onsets(self) -> List[float]:
        """Return the onsets of the emphasised phrases."""
        return [p.onset for p in self.phrases if p.emphasised]

    def loudness(self, times: np.ndarray, scale: float = 1.0) -> np.ndarray:
        """Return each phrase's level times ``scale`` at ``times`` (0 in silence)."""
        out = np.zeros(len(times))
        for p in self.phrases:
            out[(times >= p.onset) & (times < p.end)] = p.level * scale
        return out


def _phrase_config(config: SyntheticReactConfig) -> SyntheticConfig:
    """Return the IEMOCAP generator's settings that :func:`phrase_audio` reads."""
    return SyntheticConfig(sample_rate=config.sample_rate, hop_samples=1,
                           syllable_seconds=config.syllable_seconds)


def _script(rng: np.random.Generator, split: str, session: str, seconds: float,
            config: SyntheticReactConfig, speech: SyntheticConfig) -> SessionScript:
    cfg, limit = config, seconds - 0.2
    t, phrases = rng.uniform(*cfg.lead_seconds), []
    while True:
        count = int(rng.integers(cfg.phrases_per_utterance[0],
                                 cfg.phrases_per_utterance[1] + 1))
        placed = 0
        for p in range(count):
            onset = t + (rng.uniform(*cfg.pause_seconds) if p else 0.0)
            syllables = int(rng.integers(cfg.syllables_per_phrase[0],
                                         cfg.syllables_per_phrase[1] + 1))
            seed = int(rng.integers(2 ** 31))
            emphasised = bool(rng.uniform() < cfg.emphasis_probability)
            level = rng.uniform(*cfg.phrase_level) * (cfg.emphasis_gain if emphasised else 1.0)
            n = phrase_audio(np.random.default_rng(seed), syllables, 150.0, 1.0, speech)[0].size
            end = onset + n / cfg.sample_rate
            if end > limit:
                break
            phrases.append(Phrase(onset, end, level, emphasised, p == count - 1, syllables,
                                  seed))
            placed, t = placed + 1, end
        if placed < count:  # the clip ends: the utterance ends with what was placed
            if placed:
                phrases[-1] = replace(phrases[-1], final=True)
            return SessionScript(split, session, seconds, tuple(phrases))
        t += rng.uniform(*cfg.gap_seconds)


def _speaker_audio(rng: np.random.Generator, script: SessionScript, f0: float, gain: float,
                   config: SyntheticReactConfig, speech: SyntheticConfig) -> np.ndarray:
    sr = config.sample_rate
    wav = _NOISE_FLOOR * rng.standard_normal(int(round(script.seconds * sr)))
    for p in script.phrases:
        ratio = speech.final_f0_ratio if p.final else speech.continuation_f0_ratio
        audio, level = phrase_audio(np.random.default_rng(p.seed), p.syllables, f0, ratio,
                                    speech)
        start = int(round(p.onset * sr))
        wav[start:start + audio.size] += audio * (_AMPLITUDE * p.level * gain / level)
    return wav


def _noisy(rng: np.random.Generator, config: SyntheticReactConfig, frames: int, std: float,
           count: int) -> np.ndarray:
    """Return ``(frames, count)``: per-channel identity offsets plus AR(1) noise of ``std``."""
    identity = config.identity_scale * std * rng.standard_normal(count)
    return identity + np.stack([ar1_noise(rng, frames, config.noise_phi, std)
                                for _ in range(count)], axis=1)


@dataclass
class FaceDrive:
    """The planted part of a face: additions to latent channels, per facial frame."""

    au: Dict[str, np.ndarray] = field(default_factory=dict)  # AU name -> logit addition
    expression: Dict[str, np.ndarray] = field(default_factory=dict)  # name -> logit addition
    valence: Optional[np.ndarray] = None  # pre-tanh addition
    arousal: Optional[np.ndarray] = None
    pitch: Optional[np.ndarray] = None  # rot_x addition, radians


def _sample_face(rng: np.random.Generator, config: SyntheticReactConfig, frames: int,
                 drive: FaceDrive) -> Tuple[np.ndarray, np.ndarray]:
    """Return the ``(T, 25)`` attributes and ``(T, 58)`` coefficients of one face."""
    cfg, n_au = config, len(REACT_ACTION_UNITS)
    zero = np.zeros(frames)
    au_logits = _AU_REST + _noisy(rng, cfg, frames, cfg.au_noise, n_au)
    for name, add in drive.au.items():
        au_logits[:, REACT_ACTION_UNITS.index(name)] += add
    au = 1.0 / (1.0 + np.exp(-au_logits))
    affect = _noisy(rng, cfg, frames, cfg.affect_noise, 2)
    valence = np.tanh(_VALENCE_REST + affect[:, 0] + (
        drive.valence if drive.valence is not None else zero))
    arousal = np.tanh(_AROUSAL_REST + affect[:, 1] + (
        drive.arousal if drive.arousal is not None else zero))
    logits = _noisy(rng, cfg, frames, cfg.au_noise, len(REACT_EXPRESSIONS))
    for name, rest in _EXPRESSION_REST.items():
        logits[:, REACT_EXPRESSIONS.index(name)] += rest
    for name, add in drive.expression.items():
        logits[:, REACT_EXPRESSIONS.index(name)] += add
    logits -= logits.max(axis=1, keepdims=True)
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    attributes = np.column_stack((au, valence, arousal, probabilities))
    expression = _noisy(rng, cfg, frames, cfg.coefficient_noise,
                        EXPRESSION_COLUMNS.stop - EXPRESSION_COLUMNS.start)
    for unit, names in _LINKS.items():
        for name in names:
            expression[:, BLENDSHAPE_INDEX[name]] += _COUPLING * au[
                :, REACT_ACTION_UNITS.index(unit)]
    rotation = np.asarray(FACEVERSE_FRONTAL_ROTATION) + _noisy(
        rng, cfg, frames, cfg.pose_noise, ROTATION_COLUMNS.stop - ROTATION_COLUMNS.start)
    if drive.pitch is not None:
        rotation[:, 0] += drive.pitch
    translation = _noisy(rng, cfg, frames, cfg.pose_noise,
                         COEFFICIENTS.dim - ROTATION_COLUMNS.stop)
    coefficients = np.column_stack((expression, rotation, translation))
    return attributes.astype(np.float32), coefficients.astype(np.float32)


def _arousal_drive(script: SessionScript, config: SyntheticReactConfig) -> np.ndarray:
    """Return the loudness heard, delayed and causally smoothed: arousal's planted part."""
    heard = script.loudness(script.times() - config.arousal_lag_seconds, 1.0 / config.loudest)
    alpha = 1.0 - math.exp(-1.0 / (FACIAL_FPS * config.arousal_smoothing_seconds))
    out, y = np.empty_like(heard), 0.0
    for j, x in enumerate(heard):
        y += alpha * (x - y)
        out[j] = y
    return out


def _flips(rng: np.random.Generator, cues: Sequence[float], probability: float) -> List[bool]:
    return [bool(rng.uniform() < probability) for _ in cues]


def _listener_face(rng: np.random.Generator, script: SessionScript,
                   config: SyntheticReactConfig) -> Tuple[np.ndarray, np.ndarray, Dict]:
    """Return one listener's attributes, coefficients and coin flips for ``script``."""
    cfg, t = config, script.times()
    cues = {'smile': script.utterance_ends(), 'brow': script.emphasis_onsets(),
            'nod': script.phrase_ends()}
    flips = {'smile': _flips(rng, cues['smile'], cfg.smile_probability),
             'brow': _flips(rng, cues['brow'], cfg.brow_probability),
             'nod': _flips(rng, cues['nod'], cfg.nod_probability)}
    smile, brow, nod = np.zeros(t.size), np.zeros(t.size), np.zeros(t.size)
    for cue, flip in zip(cues['smile'], flips['smile']):
        smile = np.maximum(smile, cfg.smile.shape(t - cue) if flip else 0.0)
    for cue, flip in zip(cues['brow'], flips['brow']):
        brow = np.maximum(brow, cfg.brow.shape(t - cue) if flip else 0.0)
    for cue, flip in zip(cues['nod'], flips['nod']):
        if flip:
            nod += np.radians(cfg.nod.shape(t - cue - cfg.nod.lag_seconds))
    drive = FaceDrive(
        au={**{k: g * smile for k, g in _SMILE.items()},
            **{k: g * brow for k, g in _BROW.items()}},
        expression={'Happy': _SMILE_HAPPY * smile, 'Surprise': _BROW_SURPRISE * brow},
        valence=_SMILE_VALENCE * smile, arousal=_AROUSAL_GAIN * _arousal_drive(script, cfg),
        pitch=nod)
    attributes, coefficients = _sample_face(rng, cfg, script.frames, drive)
    return attributes, coefficients, flips


def _speaker_face(rng: np.random.Generator, script: SessionScript, gain: float,
                  config: SyntheticReactConfig) -> Tuple[np.ndarray, np.ndarray]:
    own = script.loudness(script.times(), gain / config.loudest)
    drive = FaceDrive(au={k: g * own for k, g in _SPEAKING.items()})
    return _sample_face(rng, config, script.frames, drive)


def _save(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(str(path), np.ascontiguousarray(array, dtype=np.float32))


def _write_wav(path: Path, mono: np.ndarray, config: SyntheticReactConfig) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # extra channels are attenuated copies, so a down-mix is a plain scale of the voice
    data = np.stack([mono * (1.0 - 0.2 * c) for c in range(config.channels)], axis=1)
    sf.write(str(path), np.clip(data, -1.0, 1.0), config.sample_rate, subtype='PCM_16')


def generate_corpus(out_dir: Path, config: Optional[SyntheticReactConfig] = None) -> Path:
    """Write a synthetic REACT 2025 corpus into ``out_dir`` (new or empty); return the root."""
    cfg = config if config is not None else SyntheticReactConfig()
    root = Path(out_dir)
    if root.exists() and any(root.iterdir()):
        raise FileExistsError(f'{root} is not empty: a corpus is written into a new folder')
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(cfg.seed)
    speech = _phrase_config(cfg)
    truth: Dict[str, Any] = {'generator': __name__, 'config': _jsonable(asdict(cfg)),
                             'sessions': {}, 'clips': {}}
    listener_coefficients = []
    k = 0
    for split, n_sessions, n_short in zip(SPLITS, cfg.sessions, cfg.short_sessions):
        for s in range(n_sessions):
            short = s >= n_sessions - n_short
            seconds = round(rng.uniform(*(cfg.short_clip_seconds if short
                                          else cfg.clip_seconds)), 1)
            script = _script(rng, split, f'session{k}', seconds, cfg, speech)
            k += 1
            truth['sessions'][f'{split}/{script.session}'] = _jsonable(asdict(script))
            for c in range(cfg.clips_per_session):
                clip = f'clip{c}'
                f0 = rng.uniform(*cfg.f0_hz)
                gain = 10.0 ** (rng.uniform(-cfg.level_jitter_db, cfg.level_jitter_db) / 20.0)
                rel = f'{script.session}/{clip}'
                base = root / split
                _write_wav(base / 'audio' / 'speaker' / f'{rel}.wav',
                           _speaker_audio(rng, script, f0, gain, cfg, speech), cfg)
                _write_wav(base / 'audio' / 'listener' / f'{rel}.wav',
                           _NOISE_FLOOR * rng.standard_normal(
                               int(round(seconds * cfg.sample_rate))), cfg)
                speaker = _speaker_face(rng, script, gain, cfg)
                *listener, flips = _listener_face(rng, script, cfg)
                for side, (attributes, coefficients) in (('speaker', speaker),
                                                         ('listener', listener)):
                    _save(base / 'facial-attributes' / side / f'{rel}.npy', attributes)
                    _save(base / 'coefficients' / side / f'{rel}.npy', coefficients)
                listener_coefficients.append(listener[1])
                truth['clips'][f'{split}/{rel}'] = {'f0_hz': f0, 'gain': gain, 'flips': flips}
                if split == 'test':
                    samples = [_listener_face(rng, script, cfg)[:2]
                               for _ in range(cfg.oracle_samples)]
                    for kind, i in (('facial-attributes', 0), ('coefficients', 1)):
                        _save(root / ORACLE_DIR / split / kind / f'{rel}.npy',
                              np.stack([sample[i] for sample in samples]))
    stacked = np.concatenate(listener_coefficients)
    _save(root / MEAN_FACE_FILE, stacked.mean(axis=0))
    _save(root / STD_FACE_FILE, stacked.std(axis=0))
    (root / TRUTH_FILE).write_text(json.dumps(truth, indent=1), encoding='utf-8')
    return root


def _jsonable(data: Any) -> Any:
    """Return ``data`` with tuples as lists and numpy scalars as Python numbers."""
    return json.loads(json.dumps(data, default=float))


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Generate a corpus from the command line and print what it holds."""
    parser = argparse.ArgumentParser(
        prog='python -m listener_head_ros.data.synthetic_react',
        description='Write a synthetic corpus in the REACT 2025 (MARS) release layout, with '
                    'a planted listener reaction and its oracle.')
    parser.add_argument('--out', type=Path, required=True, help='a new or empty folder')
    parser.add_argument('--small', action='store_true',
                        help=f'the small corpus of the tests ({sum(SMALL.sessions)} sessions)')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    config = replace(SMALL if args.small else SyntheticReactConfig(), seed=args.seed)
    try:
        root = generate_corpus(args.out, config)
    except FileExistsError as exc:
        print(f'error: {exc}')
        return 2
    truth = json.loads((root / TRUTH_FILE).read_text(encoding='utf-8'))
    for split in SPLITS:
        scripts = [v for key, v in truth['sessions'].items() if key.startswith(f'{split}/')]
        minutes = sum(s['seconds'] for s in scripts) * config.clips_per_session / 60.0
        print(f'{split}: {len(scripts)} sessions x {config.clips_per_session} dyads, '
              f'{minutes:.1f} min')
    print(f'wrote the corpus to {root} ({config.oracle_samples} oracle reactions per test '
          f'dyad in {root / ORACLE_DIR})')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
