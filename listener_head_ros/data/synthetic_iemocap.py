"""
Synthetic IEMOCAP: the release layout and file formats, with planted listening and speaking motion.

:func:`generate_corpus` writes ``OUT/IEMOCAP_full_release/Session{s}/dialog/`` with ``wav/``
(16 kHz stereo PCM-16, the female actor on the left channel and the male actor on the
right), ``transcriptions/``, ``EmoEvaluation/`` and ``MOCAP_head/`` (the marker wearer's
head at 120 fps in degrees, columns ``Frame Time pitch roll yaw tra_x tra_y tra_z``) and
``Session{s}/sentences/ForcedAlignment/`` (word times, see Words below), so that
:mod:`listener_head_ros.data.iemocap` is exercised as on the real release, plus
one floors file per role (:data:`~listener_head_ros.data.iemocap.FLOORS_FILES`:
``reference_floors.json`` for the listening role, ``reference_floors_speaking.json`` for the
speaking role, each with the Bayes floor and the neutral pose's MAE of each figure of the
role's segments).  Session 5 reproduces the release's naming
exception: the male wearer's first scripted dialog is ``Ses05M_script01_1b`` with
``MOCAP_head/Ses05M_script01_1.txt``.

Speech.  Each turn is one utterance: ``lead_seconds`` of silence, 2..4 phrases separated
by pauses, then ``closing_silence_seconds`` of silence (inside the transcribed span); turns
are separated by ``turn_gap_seconds`` of silence.  A phrase is a harmonic source (12
harmonics, 1/k roll-off) with a declining, accented f0 contour whose last syllable falls to
``final_f0_ratio`` of the speaker's base pitch at the end of the utterance's final phrase
(the low-pitch cue of an utterance end) and rises to ``continuation_f0_ratio`` at the end of
every other phrase (a continuation rise: more is coming), shaped by a syllable-rate
amplitude envelope that never reaches silence inside a phrase, plus aspiration noise; a
-70 dBFS noise floor covers both channels.  Utterances start on a grid of 8 model hops
counted from the start of the dialog (``8 * 533 / 16000`` s is exact with the
transcription's 4 decimals), and phrase onsets and ends on the ``hop_samples`` grid, so every
planted event falls exactly on a model frame boundary of the dialog stream: sub-frame timing
ambiguity would otherwise add to the floor.

Planted causal relation.  After every event of the actor who is *not* wearing the markers
(the interlocutor), the listener makes each :class:`PlantedResponse` of ``responses``: a
smooth, fixed-shape movement of one axis starting a fixed lag after the event.  The events
(:data:`TRIGGERS`) are ``'phrase_onset'``, ``'phrase_end'`` (the end of a phrase that
another phrase of the same utterance follows) and ``'utterance_end'`` (the end of the
transcribed utterance, ``closing_silence_seconds`` after its final phrase).  By default the
pitch column nods (down 8 degrees, then back up, 1 s) 300 ms after each phrase end, roll
tilts 3 degrees 100 ms after it, yaw turns 5 degrees 200 ms after each phrase onset, and a
**post-utterance nod** (down 6 degrees, 0.8 s) starts 100 ms after each utterance ends:
outside the transcribed span, in the pause before the next turn (``turn_gap_seconds``
holds it), so only a listening window sees it.  Pauses are at least as long as every
phrase-end lag, no phrase has a silent gap inside, and a phrase's last syllable tells
whether the utterance goes on, so each response is a deterministic function of the audio
heard so far.  On top, every axis gets AR(1) noise
``e_t = phi e_{t-1} + sqrt(1 - phi^2) sigma_a w_t`` (``w`` white, unit variance) at the mocap
rate, started from its stationary law so that its stationary standard deviation is exactly
``noise_std_deg[a]``, and the wearer's constant neutral pose (uniform in
``+-neutral_range_deg`` per session and actor, recorded in :class:`DialogTruth`).

Planted speaking relation.  During the wearer's *own* turns, the head moves with its own
speech: each :class:`PlantedResponse` of ``speaking_responses`` follows every one of the
wearer's own phrase onsets or phrase ends (:data:`SPEAKING_TRIGGERS`; the final phrase's end
too), scaled by that phrase's loudness (its amplitude level over the loudest level, 0.5..1).
By default the pitch nods (down 7 degrees at full loudness, 0.6 s) 150 ms after each own
phrase onset, and roll tilts 3 degrees 100 ms after each own phrase end; the AR(1) noise
below runs on throughout.  A phrase's level is heard in its first frames and every
movement's lag plus length fits in the closing silence and the turn gap, so the speaking
motion is a deterministic function of the wearer's own audio heard so far, and it stays
inside the wearer's own listening windows (``role='speaker'`` of
:mod:`listener_head_ros.data.iemocap`); the listening relation's windows never see it.
Both relations are made of responses with ``f(1 - u) = -f(u)``, so the per-dialog median
neutral stays unbiased.

Words.  Every phrase's syllables are grouped into words of 1..3 syllables, and each word is
drawn from :data:`VOCABULARY` by its syllable count, or is the trigger word of that count
(:attr:`SyntheticConfig.trigger_words`) with probability :attr:`SyntheticConfig.trigger_rate`.
Words come from a random stream of their own, drawn after the audio and independently of it,
so the audio (and every relation planted on it) is the same whatever the words, and the
audio of a trigger word is by construction that of any other word of its syllable count.
The transcription holds the words, and ``sentences/ForcedAlignment/<dialog>/<utt>.wdseg``
their times in the release's format (:mod:`listener_head_ros.data.transcripts`): each word
spans its syllables, its first and last 10 ms frames counted from the transcribed start of
the utterance (the syllable edges rounded to that grid, at most 5 ms off the audio);
``<s>``, ``<sil>`` (sometimes ``++BREATH++``) and ``</s>`` cover the silences, and some words
carry a ``(2)`` pronunciation marker.  :attr:`TruthUtterance.words` holds the words with the
times :func:`~listener_head_ros.data.transcripts.parse_wdseg` reads, exactly.

Planted text relation (off by default: ``text_responses`` is empty).  Each
:class:`PlantedResponse` of :attr:`SyntheticConfig.text_responses` (trigger
``'trigger_word'``) follows every trigger word of the interlocutor, ``lag_seconds`` after the
end of the model frame at which the recogniser's incremental result of the word arrives:
the first frame end at or after the word's end plus :attr:`SyntheticConfig.asr_latency`
(the IEMOCAP source's default latency; :meth:`DialogTruth.recognised_at`).  A causal model
that reads the transcripts as the stream delivers them therefore knows each response's start
exactly; one that only hears the audio cannot tell a trigger word from another.  Every
text response ends before the next turn can start (validated), inside the listening window.
:func:`text_driven_mask` marks the frames that a response of *some* heard word (trigger or
not) can move, :func:`text_predictions` gives the text oracle and the best predictor without
the words' identities, and :func:`text_floors` their exact MAEs on those frames
(:data:`~listener_head_ros.data.iemocap.TEXT_FLOORS_FILE`); :data:`TEXT_SMALL` is a small
corpus with the text relation only.

Bayes floor.  The model only hears audio, never past head motion, and the noise is
independent of the audio, so the best causal prediction of frame ``t`` under absolute error
is the deterministic part plus the conditional median of ``e_t`` given the audio, which is
0: the noise is a zero-mean Gaussian independent of everything the model sees (its past
values would help, but the model does not observe them).  The floor is therefore
``E|e_t| = sqrt(2 / pi) sigma_a`` per axis, at every frame, so it is the same for each figure
(:data:`~listener_head_ros.data.windows.FIGURES`: the protocol's utterances, the listening
windows and their tails), and the same for either role: the noise is the same at every
frame, and each role's deterministic part is a function of the audio that role hears.
The parser samples the track at model frame times by linear interpolation between mocap
rows: at a fraction ``w`` between rows the interpolated noise has variance
``sigma^2 (1 - 2 w (1 - w) (1 - phi))``, so the floor at model frames is
``sqrt(2 / pi) sigma_a kappa`` with ``kappa`` the mean of ``sqrt(1 - 2 w (1 - w) (1 - phi))``
over uniform ``w`` (``kappa = 0.9917`` for ``phi = 0.95``).  :func:`bayes_floor_mae_deg`
returns it per axis and averaged over the three axes (the evaluation protocol's mean of
per-axis MAEs); with the defaults it is 0.475 degrees.  Two effects are left out, each well
under 1 %: the per-dialog median neutral that the parser subtracts differs from the true
neutral by a small noise-driven offset (every response satisfies ``f(1 - u) = -f(u)``, so it
adds as many samples above the neutral as below it and does not bias the median), and NaN
gaps are bridged by straight lines.  :meth:`SyntheticCorpus.neutral_mae` holds the
measured MAE of always predicting the neutral pose, per role and figure: the baseline to beat.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass, field, replace
import io
import json
import math
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import soundfile as sf

from scipy.special import ndtr

from listener_head_ros.data.iemocap import (
    FLOORS_FILES, MOCAP_ALIASES, SESSIONS, TEXT_FLOORS_FILE)
from listener_head_ros.data.source import INTERLOCUTOR, LISTENER, Turn
from listener_head_ros.data.transcripts import (
    RecognitionConfig, TimedWord, WDSEG_FRAME_SECONDS)
from listener_head_ros.data.windows import (
    DEFAULT_TAIL_SECONDS, FIGURES, figure_frames, listening_segments)
from listener_head_ros.roles import LISTENING, ROLES, SPEAKING

EMOTIONS = ('neu', 'hap', 'sad', 'ang', 'fru', 'exc', 'sur', 'xxx')
_EMOTION_NAMES = {'neu': 'Neutral', 'hap': 'Happiness', 'sad': 'Sadness', 'ang': 'Anger',
                  'fru': 'Frustration', 'exc': 'Excited', 'sur': 'Surprise', 'xxx': 'Other'}
_BASE_F0 = {'F': 210.0, 'M': 125.0}
_CHANNEL = {'F': 0, 'M': 1}  # female left, male right
_N_HARMONICS = 12
_START_HOPS = 8  # utterances start on this grid of hops: 8 * 533 / 16000 s has 4 decimals
TRIGGERS = ('phrase_end', 'phrase_onset', 'utterance_end')
SPEAKING_TRIGGERS = ('phrase_end', 'phrase_onset')  # of the wearer's own phrases, every one
_LOUDEST = 0.3  # the loudest phrase level of phrase_audio: a speaking response's full scale
_FOLLOWED = {LISTENING: INTERLOCUTOR, SPEAKING: LISTENER}  # role -> the turns it segments
TEXT_TRIGGERS = ('trigger_word',)  # of the interlocutor's words, after their recognition
VOCABULARY: Dict[int, Tuple[str, ...]] = {  # syllables -> the words that are no trigger
    1: ('so', 'well', 'i', 'think', 'that', 'we', 'should', 'go', 'there', 'the', 'it',
        'you', 'can', 'just', 'what', 'know', 'now', 'home'),
    2: ('maybe', 'going', 'little', 'over', 'later', 'never', 'something', 'people', 'only',
        'doctor', 'always', 'money'),
    3: ('tomorrow', 'anyway', 'everything', 'beautiful', 'yesterday', 'remember',
        'another', 'somebody', 'family', 'understand'),
}
DEFAULT_TRIGGER_WORDS = ('right', 'really', 'exactly')  # of 1, 2 and 3 syllables


_RESPONSE_PEAK = 3.0 * math.sqrt(3.0) / 8.0  # max of sin(pi u)^2 sin(2 pi u) on [0, 1]


@dataclass(frozen=True)
class PlantedResponse:
    """
    A fixed-shape head movement the listener makes after each event of the speaker.

    Starting ``lag_seconds`` after every ``trigger`` (one of :data:`TRIGGERS`, or of
    :data:`TEXT_TRIGGERS` for a text response) of the other actor, ``axis`` moves by
    ``amplitude_deg * f(u)``, ``u = tau / seconds`` in 0..1, with
    ``f(u) = sin(pi u)^2 sin(2 pi u) / (3 sqrt(3) / 8)``: smooth start and end, a peak
    of ``amplitude_deg`` then an equal opposite one (``f(1 - u) = -f(u)``).
    """

    axis: str  # 'roll' | 'pitch' | 'yaw'
    trigger: str  # 'phrase_end' | 'phrase_onset' | 'utterance_end' | 'trigger_word'
    lag_seconds: float
    seconds: float
    amplitude_deg: float

    def shape(self, tau: np.ndarray) -> np.ndarray:
        """Return the movement in degrees ``tau`` seconds after its trigger."""
        u = np.clip(np.asarray(tau, dtype=np.float64) / self.seconds, 0.0, 1.0)
        return self.amplitude_deg * np.sin(np.pi * u) ** 2 * np.sin(2.0 * np.pi * u) / (
            _RESPONSE_PEAK)


DEFAULT_RESPONSES: Tuple[PlantedResponse, ...] = (
    PlantedResponse('pitch', 'phrase_end', 0.3, 1.0, -8.0),  # the nod: down, then back up
    PlantedResponse('roll', 'phrase_end', 0.1, 0.8, 3.0),
    PlantedResponse('yaw', 'phrase_onset', 0.2, 1.2, 5.0),
    PlantedResponse('pitch', 'utterance_end', 0.1, 0.8, -6.0),  # the post-utterance nod
)
DEFAULT_SPEAKING_RESPONSES: Tuple[PlantedResponse, ...] = (
    PlantedResponse('pitch', 'phrase_onset', 0.15, 0.6, -7.0),  # a beat nod, loudness-scaled
    PlantedResponse('roll', 'phrase_end', 0.1, 0.5, 3.0),
)
_AXES = ('roll', 'pitch', 'yaw')


@dataclass(frozen=True)
class SyntheticConfig:
    """Size and parameters of a synthetic corpus (durations in seconds, angles in degrees)."""

    sessions: Tuple[int, ...] = SESSIONS
    dialogs_per_session: int = 4  # wearers alternate F, M; pairs alternate impro, script
    turns_per_dialog: int = 6
    sample_rate: int = 16000
    hop_samples: int = 533  # model hop: phrase boundaries lie on this grid (see module doc)
    mocap_fps: float = 120.0
    phrases_per_turn: Tuple[int, int] = (2, 4)
    syllables_per_phrase: Tuple[int, int] = (3, 7)
    syllable_seconds: Tuple[float, float] = (0.12, 0.24)
    pause_seconds: Tuple[float, float] = (0.45, 0.9)  # between phrases, >= every end lag
    lead_seconds: float = 0.25  # silence opening each utterance
    closing_silence_seconds: float = 0.3  # silence closing each transcribed utterance
    turn_gap_seconds: Tuple[float, float] = (1.0, 1.6)  # silence between utterances: holds
    # every utterance-end response
    window_tail_seconds: float = DEFAULT_TAIL_SECONDS  # listening windows of the figures
    same_speaker_probability: float = 0.2
    final_f0_ratio: float = 0.72  # an utterance's last syllable falls to this x base f0
    continuation_f0_ratio: float = 1.2  # other phrases' last syllables rise to this
    responses: Tuple[PlantedResponse, ...] = DEFAULT_RESPONSES
    speaking_responses: Tuple[PlantedResponse, ...] = DEFAULT_SPEAKING_RESPONSES  # own turns
    noise_std_deg: Tuple[float, float, float] = (0.6, 0.6, 0.6)  # roll, pitch, yaw
    noise_phi: float = 0.95  # AR(1) coefficient per mocap row
    neutral_range_deg: float = 5.0
    short_gaps_per_dialog: int = 1  # NaN runs inside listener utterances, interpolated
    short_gap_seconds: float = 0.1
    long_gap_probability: float = 0.25  # per dialog: one NaN run that drops its utterance
    long_gap_seconds: float = 0.5
    text_responses: Tuple[PlantedResponse, ...] = ()  # after trigger words: off by default
    trigger_words: Tuple[str, str, str] = DEFAULT_TRIGGER_WORDS  # of 1, 2, 3 syllables
    trigger_rate: float = 0.25  # the chance that a word is its syllable count's trigger
    asr_latency: float = RecognitionConfig.latency  # s from a word's end to its result

    def __post_init__(self) -> None:
        for r in self.responses:
            if r.axis not in _AXES or r.trigger not in TRIGGERS:
                raise ValueError(f'bad planted response {r}')
            if r.trigger == 'phrase_end' and self.pause_seconds[0] < r.lag_seconds:
                raise ValueError('pause_seconds must be >= the lag of phrase_end responses')
            if (r.trigger == 'utterance_end'
                    and self.turn_gap_seconds[0] < r.lag_seconds + r.seconds):
                raise ValueError('turn_gap_seconds must hold every utterance_end response '
                                 '(lag + seconds)')
        for r in self.speaking_responses:
            if r.axis not in _AXES or r.trigger not in SPEAKING_TRIGGERS:
                raise ValueError(f'bad planted speaking response {r}')
            if r.lag_seconds + r.seconds > (self.closing_silence_seconds
                                            + self.turn_gap_seconds[0]):
                raise ValueError('closing_silence_seconds + turn_gap_seconds must hold every '
                                 'speaking response (lag + seconds)')
        hold = self.closing_silence_seconds + self.turn_gap_seconds[0]
        for r in self.text_responses:
            if r.axis not in _AXES or r.trigger not in TEXT_TRIGGERS:
                raise ValueError(f'bad planted text response {r}')
            if (self.asr_latency + r.lag_seconds + r.seconds
                    + self.hop_samples / self.sample_rate > hold):
                raise ValueError('closing_silence_seconds + turn_gap_seconds must hold every '
                                 'text response (asr_latency + a frame + lag + seconds)')
        vocabulary = {w for words in VOCABULARY.values() for w in words}
        if (len(set(self.trigger_words)) != len(VOCABULARY)
                or vocabulary & set(self.trigger_words)):
            raise ValueError(f'trigger_words needs {len(VOCABULARY)} distinct words outside '
                             f'VOCABULARY (of 1, 2, 3 syllables)')
        if not 0.0 <= self.trigger_rate <= 1.0:
            raise ValueError('trigger_rate must lie in [0, 1]')
        RecognitionConfig(self.asr_latency)  # raises on a bad latency
        if not 0.0 <= self.noise_phi < 1.0:
            raise ValueError('noise_phi must lie in [0, 1)')
        if self.dialogs_per_session < 1 or self.turns_per_dialog < 1:
            raise ValueError('dialogs_per_session and turns_per_dialog must be >= 1')


TEXT_RESPONSES: Tuple[PlantedResponse, ...] = (
    PlantedResponse('pitch', 'trigger_word', 0.1, 0.8, -8.0),  # a nod after each trigger word
    PlantedResponse('yaw', 'trigger_word', 0.1, 0.8, 6.0),  # and a shake
)
# a few seconds to generate: the text relation alone (no prosodic, no speaking responses, no
# NaN gaps), so that the text-driven frames hold nothing but it and the AR(1) noise
TEXT_SMALL = SyntheticConfig(
    sessions=(1, 2, 3), dialogs_per_session=2, turns_per_dialog=8, responses=(),
    speaking_responses=(), short_gaps_per_dialog=0, long_gap_probability=0.0,
    text_responses=TEXT_RESPONSES, trigger_rate=0.3)


_PRESETS = {'default': SyntheticConfig(), 'text_small': TEXT_SMALL}


@dataclass(frozen=True)
class TruthUtterance:
    """One generated utterance, in seconds since the start of the dialog."""

    utterance_id: str
    speaker: str
    start: float  # on the start grid: exact in the 4-decimal transcription
    end: float  # exact (the transcription rounds it to 4 decimals)
    phrase_onsets: Tuple[float, ...]
    phrase_ends: Tuple[float, ...]
    phrase_levels: Tuple[float, ...]  # each phrase's loudness (its amplitude scale)
    words: Tuple[TimedWord, ...] = ()  # as parse_wdseg reads them from the alignment


@dataclass
class DialogTruth:
    """What was planted in one dialog."""

    session: int
    name: str  # the wav/transcription name
    mocap_name: str  # the MOCAP_head file name (differs for the alias)
    wearer: str
    duration: float
    neutral_deg: np.ndarray  # (3,) roll, pitch, yaw
    utterances: List[TruthUtterance]
    responses: Tuple[PlantedResponse, ...]
    speaking_responses: Tuple[PlantedResponse, ...]
    gaps: List[Tuple[int, int]] = field(default_factory=list)  # NaN runs: (first row, rows)
    skipped_lines: int = 0  # odd transcription lines written
    neutral_mae_deg: Dict[str, Dict[str, List[float]]] = field(default_factory=dict)  # role
    # -> figure -> per segment of the role (non-empty tails only)
    text_responses: Tuple[PlantedResponse, ...] = ()
    trigger_words: Tuple[str, ...] = DEFAULT_TRIGGER_WORDS
    asr_latency: float = RecognitionConfig.latency
    frame_seconds: float = 533 / 16000  # the model hop: recognition results arrive on it
    mocap_fps: float = 120.0
    n_frames: int = 0  # model frames of the dialog stream

    def listener_utterances(self) -> List[TruthUtterance]:
        """Return the utterances of the other actor (the listener samples)."""
        return [u for u in self.utterances if u.speaker != self.wearer]

    def heard_words(self) -> List[TimedWord]:
        """Return the other actor's words, in time order."""
        return [w for u in self.listener_utterances() for w in u.words]

    def recognised_at(self, word: TimedWord) -> float:
        """Return the end of the model frame at which the result of ``word`` arrives."""
        published = word.end + self.asr_latency
        return self.frame_seconds * math.ceil(published / self.frame_seconds - 1e-9)

    def triggers(self, trigger: str) -> np.ndarray:
        """Return the times of the other actor's events of :data:`TRIGGERS`/``TEXT_``."""
        if trigger == 'trigger_word':
            return np.array([self.recognised_at(w) for w in self.heard_words()
                             if w.text in self.trigger_words])
        if trigger == 'utterance_end':
            return np.array([u.end for u in self.listener_utterances()])
        if trigger == 'phrase_end':  # the phrase ends that another phrase follows
            return np.array([t for u in self.listener_utterances() for t in u.phrase_ends[:-1]])
        return np.array([t for u in self.listener_utterances() for t in u.phrase_onsets])

    def own_triggers(self, trigger: str) -> Tuple[np.ndarray, np.ndarray]:
        """Return the times of the wearer's own phrase events and their loudness scales."""
        own = [u for u in self.utterances if u.speaker == self.wearer]
        times = [u.phrase_ends if trigger == 'phrase_end' else u.phrase_onsets for u in own]
        return (np.array([t for ts in times for t in ts]),
                np.array([v / _LOUDEST for u in own for v in u.phrase_levels]))

    def turns(self) -> List[Turn]:
        """Return the utterances as the parser reads them from the transcription."""
        return [Turn(u.utterance_id, u.speaker, LISTENER if u.speaker == self.wearer
                     else INTERLOCUTOR, round(u.start, 4), round(u.end, 4))
                for u in self.utterances]

    def deterministic_deg(self, times: np.ndarray, relative: bool = False) -> np.ndarray:
        """Return the planted ``(n, 3)`` roll/pitch/yaw (neutral included unless relative)."""
        t = np.asarray(times, dtype=np.float64)
        out = np.zeros((t.size, 3)) if relative else np.tile(self.neutral_deg, (t.size, 1))
        events = ([(r, self.triggers(r.trigger), np.ones(len(self.triggers(r.trigger))))
                   for r in self.responses + self.text_responses]
                  + [(r, *self.own_triggers(r.trigger)) for r in self.speaking_responses])
        for r, times_of, scales in events:
            for event, scale in zip(times_of, scales):
                tau = t - (event + r.lag_seconds)
                inside = (tau > 0.0) & (tau < r.seconds)
                out[inside, _AXES.index(r.axis)] += scale * r.shape(tau[inside])
        return out


@dataclass
class SyntheticCorpus:
    """A generated corpus: where it is, how it was made and its Bayes floor."""

    root: Path  # the IEMOCAP_full_release folder
    config: SyntheticConfig
    seed: int
    dialogs: List[DialogTruth] = field(default_factory=list)
    floor_per_axis_deg: Tuple[float, float, float] = (0.0, 0.0, 0.0)
    floor_mae_deg: float = 0.0
    text_floors: Optional[Dict[str, Any]] = None  # text_floors(), with a text relation

    @property
    def neutral_mae_deg(self) -> Dict[str, float]:
        """Return the listening role's :meth:`neutral_mae`."""
        return self.neutral_mae(LISTENING)

    def neutral_mae(self, role: str) -> Dict[str, float]:
        """Return the MAE of predicting the neutral pose per figure of ``role``'s segments."""
        return {figure: float(np.mean([m for d in self.dialogs
                                       for m in d.neutral_mae_deg[role][figure]]))
                for figure in FIGURES}

    def reference_floors(self, role: str = LISTENING) -> Dict[str, Any]:
        """
        Return the floors the IEMOCAP source passes on for ``role``, in degrees.

        That is what ``FLOORS_FILES[role]`` holds (per stream and figure), plus, for the
        listening role of a corpus with a text relation, :attr:`text_floors` under ``'text'``.
        """
        floor = dict(zip(_AXES, self.floor_per_axis_deg), mean=self.floor_mae_deg)
        head = {'units': 'deg', 'floor': {figure: floor for figure in FIGURES},
                'neutral_mae': self.neutral_mae(role)}
        floors = {'generator': 'listener_head_ros.data.synthetic_iemocap', 'seed': self.seed,
                  'role': role, 'streams': {'head': head}}
        if role == LISTENING and self.text_floors is not None:
            floors['text'] = self.text_floors
        return floors

    def dialog(self, name: str) -> DialogTruth:
        """Return the truth of the dialog named ``name``."""
        return next(d for d in self.dialogs if d.name == name)


def interpolation_factor(phi: float, points: int = 2001) -> float:
    """Return ``kappa``: the mean noise-std ratio after linear interpolation between rows."""
    w = np.linspace(0.0, 1.0, points)
    return float(np.mean(np.sqrt(1.0 - 2.0 * w * (1.0 - w) * (1.0 - phi))))


def bayes_floor_mae_deg(config: SyntheticConfig, at_model_frames: bool = True
                        ) -> Tuple[Tuple[float, float, float], float]:
    """
    Return the per-axis and mean MAE (degrees) of the optimal audio-only causal predictor.

    ``sqrt(2 / pi) * noise_std_deg[a]``, times :func:`interpolation_factor` when the truth
    is sampled at model frames (as the parser does); see the module docstring.  It holds at
    every frame, so it is the floor of each figure (protocol, window, tail):
    :meth:`SyntheticCorpus.reference_floors` lists it per figure.
    """
    kappa = interpolation_factor(config.noise_phi) if at_model_frames else 1.0
    per_axis = tuple(math.sqrt(2.0 / math.pi) * s * kappa for s in config.noise_std_deg)
    return per_axis, float(np.mean(per_axis))


def _heard_responses(truth: DialogTruth, n_frames: int, frame_rate: float
                     ) -> Tuple[List[TimedWord], np.ndarray]:
    """
    Return the heard words and the text responses each would cause, (W, T, 3) degrees.

    The responses are sampled at the mocap rows and interpolated at the model frames, as the
    parser samples the head.
    """
    words = truth.heard_words()
    rows = np.arange(int(truth.duration * truth.mocap_fps) + 1) / truth.mocap_fps
    frame_times = np.arange(1, n_frames + 1) / frame_rate
    out = np.zeros((len(words), n_frames, 3))
    for j, word in enumerate(words):
        moved = np.zeros((rows.size, 3))
        for r in truth.text_responses:
            tau = rows - (truth.recognised_at(word) + r.lag_seconds)
            inside = (tau > 0.0) & (tau < r.seconds)
            moved[inside, _AXES.index(r.axis)] += r.shape(tau[inside])
        for a in range(3):
            out[j, :, a] = np.interp(frame_times, rows, moved[:, a])
    return words, out


def text_driven_mask(truth: DialogTruth, n_frames: int, frame_rate: float) -> np.ndarray:
    """
    Return ``(T,)`` bool: the frames that a text response of some heard word can move.

    Every word of the other actor counts, trigger or not: a frame is text-driven when it lies
    where a response would be had the word been a trigger (its window after the word's
    recognition, widened to the mocap rows the parser interpolates from).  Empty without a
    text relation.
    """
    return np.any(_heard_responses(truth, n_frames, frame_rate)[1] != 0.0, axis=(0, 2))


def _mixture_median(means: np.ndarray, weights: np.ndarray, sigma: np.ndarray
                    ) -> Tuple[np.ndarray, np.ndarray]:
    """
    Return the median and its mean absolute error of Gaussian mixtures, one per row.

    Row ``i`` is ``sum_c weights[c] N(means[i, c], sigma[i]^2)``.
    """
    s = sigma[:, None]
    lo, hi = means.min(axis=1) - 10.0 * sigma, means.max(axis=1) + 10.0 * sigma
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        below = (weights * ndtr((mid[:, None] - means) / s)).sum(axis=1) < 0.5
        lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
    median = 0.5 * (lo + hi)
    d = means - median[:, None]
    error = s * math.sqrt(2.0 / math.pi) * np.exp(-0.5 * (d / s) ** 2) + d * (
        2.0 * ndtr(d / s) - 1.0)
    return median, (weights * error).sum(axis=1)


def _text_reference(truth: DialogTruth, config: SyntheticConfig
                    ) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """
    Return what :func:`text_predictions` and :func:`text_floors` need, per frame and axis.

    The text oracle, the best prediction without the words' identities (degrees, relative
    to the neutral), the text-driven mask and the two predictions' expected absolute errors.
    """
    n, sr, hop = truth.n_frames, config.sample_rate, config.hop_samples
    words, moved = _heard_responses(truth, n, sr / hop)
    rows = np.arange(int(truth.duration * truth.mocap_fps) + 1) / truth.mocap_fps
    frame_times = hop * np.arange(1, n + 1) / sr
    planted = truth.deterministic_deg(rows, relative=True)
    oracle = np.stack([np.interp(frame_times, rows, planted[:, a]) for a in range(3)], axis=1)
    triggered = np.array([w.text in truth.trigger_words for w in words], dtype=bool)
    blind = oracle - moved[triggered].sum(axis=0)
    w = frame_times * truth.mocap_fps % 1.0
    sigma = np.outer(np.sqrt(1.0 - 2.0 * w * (1.0 - w) * (1.0 - config.noise_phi)),
                     config.noise_std_deg)
    oracle_mae = math.sqrt(2.0 / math.pi) * sigma
    blind_mae = oracle_mae.copy()
    p = config.trigger_rate
    for a in range(3):
        covering = moved[:, :, a] != 0.0
        counts = covering.sum(axis=0)
        for k in np.unique(counts[counts > 0]):
            frames = np.flatnonzero(counts == k)
            values = moved[:, frames, a].T[covering[:, frames].T].reshape(frames.size, k)
            configs = (np.arange(2 ** k)[:, None] >> np.arange(k)) & 1  # (2^k, k) triggers
            weights = np.prod(np.where(configs == 1, p, 1.0 - p), axis=1)
            median, mae = _mixture_median(values @ configs.T, weights, sigma[frames, a])
            blind[frames, a] += median
            blind_mae[frames, a] = mae
    mask = np.any(moved != 0.0, axis=(0, 2))
    return oracle, blind, mask, oracle_mae, blind_mae


def text_predictions(truth: DialogTruth, config: SyntheticConfig
                     ) -> Tuple[np.ndarray, np.ndarray]:
    """
    Return the text oracle and the best prediction without the words, ``(T, 3)`` degrees.

    Both relative to the neutral pose at the model frames.  The oracle is every planted
    movement (the best causal prediction for a model that reads the transcripts: its error
    is the AR(1) noise).  The other is the per-frame conditional median of the head given
    everything but the heard words' identities (the audio, the word times, every other
    planted movement): at each frame the text responses of the words that can move it are
    independent Bernoulli(``trigger_rate``) on/off, plus the Gaussian noise; no audio-only
    model can beat it.
    """
    oracle, blind = _text_reference(truth, config)[:2]
    return oracle, blind


def text_floors(corpus: 'SyntheticCorpus') -> Optional[Dict[str, Any]]:
    """
    Return the reference MAEs of the text-driven frames, or None without a text relation.

    Over the frames of :func:`text_driven_mask` of every dialog (all pooled), per axis and
    their mean, in degrees: ``text_floor``, the expected MAE of the text oracle (the Bayes
    floor of a model that reads the transcripts), and ``audio_only``, that of the best
    prediction without the words' identities (:func:`text_predictions`), both computed
    exactly from the generator's law (the Gaussian mixture at each frame).  ``dialogs``
    lists each dialog's text-driven frames as ``[start, end)`` runs.  Left out, as in the
    other floors: NaN gaps and the noise in the per-dialog median neutral.
    """
    config = corpus.config
    if not config.text_responses:
        return None
    oracle_sum, blind_sum, frames, dialogs = np.zeros(3), np.zeros(3), 0, {}
    for truth in corpus.dialogs:
        _, _, mask, oracle_mae, blind_mae = _text_reference(truth, config)
        oracle_sum += oracle_mae[mask].sum(axis=0)
        blind_sum += blind_mae[mask].sum(axis=0)
        frames += int(mask.sum())
        edges = np.flatnonzero(np.diff(np.concatenate(([0], mask.astype(int), [0]))))
        dialogs[truth.name] = edges.reshape(-1, 2).tolist()

    def per_axis(total: np.ndarray) -> Dict[str, float]:
        values = total / max(frames, 1)
        return dict(zip(_AXES, values.tolist()), mean=float(values.mean()))

    return {'generator': 'listener_head_ros.data.synthetic_iemocap', 'seed': corpus.seed,
            'units': 'deg', 'trigger_words': list(config.trigger_words),
            'trigger_rate': config.trigger_rate, 'asr_latency': config.asr_latency,
            'responses': [asdict(r) for r in config.text_responses], 'frames': frames,
            'text_floor': per_axis(oracle_sum), 'audio_only': per_axis(blind_sum),
            'dialogs': dialogs}


def text_mask(floors: Dict[str, Any], dialog_id: str, n_frames: int) -> np.ndarray:
    """Return ``(T,)`` bool: a dialog's text-driven frames from :func:`text_floors`."""
    mask = np.zeros(n_frames, dtype=bool)
    for start, end in floors['dialogs'].get(dialog_id, []):
        mask[start:end] = True
    return mask


def ar1_noise(rng: np.random.Generator, n: int, phi: float, std: float) -> np.ndarray:
    """Return ``n`` samples of a stationary AR(1) process with coefficient ``phi``."""
    innovations = (std * math.sqrt(1.0 - phi * phi) * rng.standard_normal(n)).tolist()
    out = np.empty(n)
    x = std * float(rng.standard_normal())  # the stationary law N(0, std^2)
    for t, e in enumerate(innovations):
        x = phi * x + e if t else x
        out[t] = x
    return out


def _dialog_names(session: int, count: int) -> List[Tuple[str, str, str]]:
    """Return ``(name, mocap_name, wearer)`` of the dialogs of one session."""
    names = []
    for j in range(count):
        wearer, pair = 'FM'[j % 2], j // 2
        kind = f'impro{pair // 2 + 1:02d}' if pair % 2 == 0 else f'script{pair // 2 + 1:02d}_1'
        name = f'Ses{session:02d}{wearer}_{kind}'
        mocap_name = name
        if f'{name}b' in MOCAP_ALIASES:
            name = f'{name}b'
            mocap_name = MOCAP_ALIASES[name]
        names.append((name, mocap_name, wearer))
    return names


def phrase_audio(rng: np.random.Generator, n_syllables: int, base_f0: float,
                 end_ratio: float, config: SyntheticConfig) -> Tuple[np.ndarray, float]:
    """Return one phrase ending at ``end_ratio`` x base f0 (whole hops) and its level."""
    return phrase_syllables(rng, n_syllables, base_f0, end_ratio, config)[:2]


def phrase_syllables(rng: np.random.Generator, n_syllables: int, base_f0: float,
                     end_ratio: float, config: SyntheticConfig
                     ) -> Tuple[np.ndarray, float, np.ndarray]:
    """Return :func:`phrase_audio`'s phrase, level and syllable edges (s from its start)."""
    sr, hop = config.sample_rate, config.hop_samples
    durations = rng.uniform(*config.syllable_seconds, size=n_syllables)
    n = int(math.ceil(durations.sum() * sr / hop)) * hop
    durations *= n / sr / durations.sum()
    edges = np.concatenate(([0.0], np.cumsum(durations)))
    t = np.arange(n) / sr
    centres = 0.5 * (edges[:-1] + edges[1:])
    knots = base_f0 * np.linspace(1.08, 0.95, n_syllables) * (
        1.0 + 0.08 * rng.uniform(-1.0, 1.0, n_syllables))
    xs = np.concatenate(([0.0], centres[:-1], [edges[-1]]))
    ys = np.concatenate(([knots[0]], knots[:-1], [end_ratio * base_f0]))
    f0 = np.interp(t, xs, ys)
    phase = 2.0 * np.pi * np.cumsum(f0) / sr + rng.uniform(0.0, 2.0 * np.pi)
    # sum_k sin(k phase) / k, with the recurrence sin(kx) = 2 cos(x) sin((k-1)x) - sin((k-2)x)
    two_cos, previous, current = 2.0 * np.cos(phase), np.zeros(n), np.sin(phase)
    source = current.copy()
    for k in range(2, _N_HARMONICS + 1):
        previous, current = current, two_cos * current - previous
        source += current / k
    source /= 2.0
    syllable = np.clip(np.searchsorted(edges, t, side='right') - 1, 0, n_syllables - 1)
    tau = (t - edges[syllable]) / durations[syllable]
    envelope = 0.25 + 0.75 * np.sin(np.pi * tau) ** 2
    ramp = min(n // 2, int(0.015 * sr))
    fade = 0.5 - 0.5 * np.cos(np.pi * np.arange(ramp) / ramp)
    envelope[:ramp] *= fade
    envelope[n - ramp:] *= fade[::-1]
    level = rng.uniform(0.15, _LOUDEST)
    return level * envelope * (source + 0.05 * rng.standard_normal(n)), level, edges


def _phrase_words(rng: np.random.Generator, edges: np.ndarray, origin: float,
                  config: SyntheticConfig) -> List[TimedWord]:
    """Return words over the syllables ``edges`` (s from ``origin``), on the 10 ms grid."""
    frames = [int(f) for f in np.rint(edges / WDSEG_FRAME_SECONDS)]
    words, k, n = [], 0, len(edges) - 1
    while k < n:
        size = min(int(rng.integers(1, len(VOCABULARY) + 1)), n - k)
        text = (config.trigger_words[size - 1] if rng.uniform() < config.trigger_rate
                else str(rng.choice(VOCABULARY[size])))
        words.append(TimedWord(text, origin + frames[k] * WDSEG_FRAME_SECONDS,
                               origin + frames[k + size] * WDSEG_FRAME_SECONDS))
        k += size
    return words


def _generate_dialog(rng: np.random.Generator, text_rng: np.random.Generator, session: int,
                     name: str, mocap_name: str, wearer: str, neutral: np.ndarray,
                     config: SyntheticConfig, base: Path) -> DialogTruth:
    cfg, sr, hop = config, config.sample_rate, config.hop_samples
    base_f0 = {a: f * rng.uniform(0.9, 1.1) for a, f in _BASE_F0.items()}
    speaker = 'FM'[rng.integers(2)]
    counters = {'F': 0, 'M': 0}
    t, pieces, utterances = rng.uniform(*cfg.turn_gap_seconds), [], []
    grid = _START_HOPS * hop
    for _ in range(cfg.turns_per_dialog):
        s0 = int(math.ceil(t * sr / grid)) * grid  # never shortens the gap before it
        start = s0 / sr
        origin = float(f'{start:.4f}')  # the transcribed start: the alignment's frame 0
        cursor = s0 + int(round(cfg.lead_seconds * sr / hop)) * hop
        onsets, ends, levels, words = [], [], [], []
        phrases = int(rng.integers(cfg.phrases_per_turn[0], cfg.phrases_per_turn[1] + 1))
        for p in range(phrases):
            if p:
                cursor += int(round(rng.uniform(*cfg.pause_seconds) * sr / hop)) * hop
            end_ratio = cfg.final_f0_ratio if p == phrases - 1 else cfg.continuation_f0_ratio
            audio, level, edges = phrase_syllables(rng, int(rng.integers(
                cfg.syllables_per_phrase[0], cfg.syllables_per_phrase[1] + 1)),
                base_f0[speaker], end_ratio, cfg)
            words += _phrase_words(text_rng, (cursor - s0) / sr + edges, origin, cfg)
            pieces.append((cursor, _CHANNEL[speaker], audio))
            onsets.append(cursor / sr)
            levels.append(level)
            cursor += audio.size
            ends.append(cursor / sr)
        end = cursor / sr + cfg.closing_silence_seconds
        uid = f'{name}_{speaker}{counters[speaker]:03d}'
        counters[speaker] += 1
        utterances.append(TruthUtterance(uid, speaker, start, end, tuple(onsets), tuple(ends),
                                         tuple(levels), tuple(words)))
        t = end + rng.uniform(*cfg.turn_gap_seconds)
        if rng.uniform() >= cfg.same_speaker_probability:
            speaker = 'M' if speaker == 'F' else 'F'
    duration = t + 0.5
    wav = 10 ** (-70 / 20) * rng.standard_normal((int(math.ceil(duration * sr)), 2))
    for offset, channel, audio in pieces:
        wav[offset:offset + audio.size, channel] += audio
    sf.write(str(base / 'wav' / f'{name}.wav'), np.clip(wav, -1.0, 1.0), sr, subtype='PCM_16')

    n_frames = wav.shape[0] // hop
    truth = DialogTruth(session, name, mocap_name, wearer, duration, neutral, utterances,
                        cfg.responses, cfg.speaking_responses,
                        text_responses=cfg.text_responses, trigger_words=cfg.trigger_words,
                        asr_latency=cfg.asr_latency, frame_seconds=hop / sr,
                        mocap_fps=cfg.mocap_fps, n_frames=n_frames)
    times = np.arange(int(duration * cfg.mocap_fps) + 1) / cfg.mocap_fps
    head = truth.deterministic_deg(times) + np.stack(
        [ar1_noise(rng, times.size, cfg.noise_phi, s) for s in cfg.noise_std_deg], axis=1)
    frame_times = hop * np.arange(1, n_frames + 1) / sr
    relative = np.stack([np.interp(frame_times, times, head[:, a] - neutral[a])
                         for a in range(3)], axis=1)
    for role in ROLES:
        segments = listening_segments(truth.turns(), n_frames, sr, hop,
                                      cfg.window_tail_seconds, followed=_FOLLOWED[role])
        truth.neutral_mae_deg[role] = {}
        for figure in FIGURES:
            frames = [relative[figure_frames(seg, figure)] for seg in segments]
            truth.neutral_mae_deg[role][figure] = [float(np.abs(f).mean(axis=0).mean())
                                                   for f in frames if len(f)]
    truth.gaps = _plant_gaps(rng, truth.listener_utterances(), times, config)
    for row, rows in truth.gaps:
        head[row:row + rows] = np.nan
    _write_mocap(base / 'MOCAP_head' / f'{mocap_name}.txt', times, head, rng)
    truth.skipped_lines = _write_transcription(base / 'transcriptions' / f'{name}.txt',
                                               name, utterances, text_rng)
    aligned = base.parent / 'sentences' / 'ForcedAlignment' / name
    aligned.mkdir(parents=True, exist_ok=True)
    for u in utterances:
        _write_wdseg(aligned / f'{u.utterance_id}.wdseg', u, text_rng)
        rng.integers(0, 10, size=4)  # the main stream's draws of the former placeholder
        # words (4 of 10 per utterance): later dialogs' audio and motion stay as they were
    _write_emo_evaluation(base / 'EmoEvaluation' / f'{name}.txt', utterances, rng)
    return truth


def _plant_gaps(rng: np.random.Generator, listened: Sequence[TruthUtterance],
                times: np.ndarray, config: SyntheticConfig) -> List[Tuple[int, int]]:
    """Place the long, then the short NaN runs inside distinct listener utterances."""
    fps = config.mocap_fps
    wanted = ([config.long_gap_seconds] * int(rng.uniform() < config.long_gap_probability)
              + [config.short_gap_seconds] * config.short_gaps_per_dialog)
    order = rng.permutation(len(listened))
    gaps = []
    for seconds, k in zip(wanted, order):
        u, rows = listened[k], int(round(seconds * fps))
        lo, hi = u.start + 0.3, u.end - 0.3 - rows / fps
        if hi > lo:
            gaps.append((int(np.searchsorted(times, rng.uniform(lo, hi))), rows))
    return gaps


def _write_mocap(path: Path, times: np.ndarray, head_deg: np.ndarray,
                 rng: np.random.Generator) -> None:
    n = times.size
    translation = np.array([0.0, -80.0, 1500.0]) + rng.standard_normal((n, 3))
    translation[np.isnan(head_deg[:, 0])] = np.nan
    table = np.column_stack((np.arange(1, n + 1), times, head_deg[:, 1], head_deg[:, 0],
                             head_deg[:, 2], translation))
    buf = io.StringIO()
    np.savetxt(buf, table, fmt=['%d', '%.4f'] + ['%.4f'] * 6, delimiter=' ')
    header = 'Frame# Time pitch roll yaw tra_x tra_y tra_z\nFrame# Time deg deg deg mm mm mm\n'
    path.write_text(header + buf.getvalue().replace('nan', 'NaN'), encoding='utf-8')


def _utterance_text(u: TruthUtterance, rng: np.random.Generator) -> str:
    """Return the transcribed text of an utterance: its words as a sentence."""
    words = ['I' if w.text == 'i' else w.text for w in u.words]
    words[0] = words[0][:1].upper() + words[0][1:]
    return ' '.join(words) + ('?' if rng.uniform() < 0.2 else '.')


def _write_transcription(path: Path, name: str, utterances: Sequence[TruthUtterance],
                         rng: np.random.Generator) -> int:
    lines = [f'{u.utterance_id} [{u.start:08.4f}-{u.end:08.4f}]: {_utterance_text(u, rng)}'
             for u in utterances]
    last = utterances[-1]
    odd = [f'{name}_{last.speaker}XX0 [{last.end:08.4f}-{last.end + 0.2:08.4f}]: [LAUGHTER]',
           f'{last.speaker}: breathing']
    path.write_text('\n'.join(lines[:1] + odd + [''] + lines[1:]) + '\n', encoding='utf-8')
    return len(odd)


def _write_wdseg(path: Path, u: TruthUtterance, rng: np.random.Generator) -> None:
    """Write the forced alignment of one utterance in the release's ``.wdseg`` format."""
    origin = float(f'{u.start:.4f}')

    def frame(t: float) -> int:
        return int(round((t - origin) / WDSEG_FRAME_SECONDS))

    rows, last = [], -1  # (first frame, last frame, token)
    for w in u.words:
        first = frame(w.start)
        if first > last + 1:
            rows.append((last + 1, first - 1, '<s>' if last < 0 else (
                '++BREATH++' if rng.uniform() < 0.2 else '<sil>')))
        last = frame(w.end) - 1
        rows.append((first, last, w.text.upper() + ('(2)' if rng.uniform() < 0.1 else '')))
    rows.append((last + 1, frame(u.end) - 1, '</s>'))
    scores = [-int(rng.integers(300, 3000)) * (b - a + 1) for a, b, _ in rows]
    lines = ([' SFrm  EFrm    SegAScr Word']
             + [f'{a:5d} {b:5d} {score:10d} {token}' for (a, b, token), score in zip(rows, scores)]
             + [f' Total score:    {sum(scores)}', ' End of file'])
    path.write_text('\n'.join(lines) + '\n', encoding='utf-8')


def _write_emo_evaluation(path: Path, utterances: Sequence[TruthUtterance],
                          rng: np.random.Generator) -> None:
    blocks = ['% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]', '']
    for u in utterances:
        label = str(rng.choice(EMOTIONS))
        v, a, d = rng.integers(2, 11, size=3) / 2.0
        blocks += [f'[{u.start:.4f} - {u.end:.4f}]\t{u.utterance_id}\t{label}\t'
                   f'[{v:.4f}, {a:.4f}, {d:.4f}]',
                   f'C-E1:\t{_EMOTION_NAMES[label]};\t()',
                   f'A-E1:\tval {int(v)}; act {int(a)}; dom  {int(d)};\t()', '']
    path.write_text('\n'.join(blocks) + '\n', encoding='utf-8')


def generate_corpus(out_dir: Path, config: Optional[SyntheticConfig] = None,
                    seed: int = 0) -> SyntheticCorpus:
    """Write a synthetic corpus under ``out_dir/IEMOCAP_full_release`` and return its truth."""
    config = config if config is not None else SyntheticConfig()
    rng = np.random.default_rng(seed)
    root = Path(out_dir) / 'IEMOCAP_full_release'
    per_axis, floor = bayes_floor_mae_deg(config)
    corpus = SyntheticCorpus(root, config, seed, [], per_axis, floor)
    for session in config.sessions:
        base = root / f'Session{session}' / 'dialog'
        for sub in ('wav', 'transcriptions', 'EmoEvaluation', 'MOCAP_head'):
            (base / sub).mkdir(parents=True, exist_ok=True)
        neutrals: Dict[str, np.ndarray] = {
            a: rng.uniform(-config.neutral_range_deg, config.neutral_range_deg, 3)
            for a in 'FM'}
        names = _dialog_names(session, config.dialogs_per_session)
        for index, (name, mocap_name, wearer) in enumerate(names):
            text_rng = np.random.default_rng((seed, session, index))  # the words' own stream
            corpus.dialogs.append(_generate_dialog(
                rng, text_rng, session, name, mocap_name, wearer, neutrals[wearer], config,
                base))
    corpus.text_floors = text_floors(corpus)
    for role, name in FLOORS_FILES.items():
        floors = {k: v for k, v in corpus.reference_floors(role).items() if k != 'text'}
        (root / name).write_text(json.dumps(floors, indent=1), encoding='utf-8')
    if corpus.text_floors is not None:
        (root / TEXT_FLOORS_FILE).write_text(json.dumps(corpus.text_floors, indent=1),
                                             encoding='utf-8')
    return corpus


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Generate a corpus from the command line and print its Bayes floor."""
    parser = argparse.ArgumentParser(
        prog='python -m listener_head_ros.data.synthetic_iemocap',
        description='Write a synthetic corpus in the IEMOCAP release layout.')
    parser.add_argument('out_dir', type=Path)
    parser.add_argument('--preset', choices=sorted(_PRESETS), default='default',
                        help='text_small: TEXT_SMALL, the text-planted relation alone')
    parser.add_argument('--dialogs-per-session', type=int, help="default: the preset's (4)")
    parser.add_argument('--turns-per-dialog', type=int, help="default: the preset's (6)")
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    config = _PRESETS[args.preset]
    sizes = {'dialogs_per_session': args.dialogs_per_session,
             'turns_per_dialog': args.turns_per_dialog}
    config = replace(config, **{k: v for k, v in sizes.items() if v is not None})
    corpus = generate_corpus(args.out_dir, config, args.seed)
    seconds = sum(u.end - u.start for d in corpus.dialogs for u in d.listener_utterances())
    print(f'wrote {len(corpus.dialogs)} dialogs to {corpus.root} '
          f'({seconds / 60.0:.1f} min of listener utterances)')
    axes = ', '.join(f'{a} {v:.3f}' for a, v in zip(_AXES, corpus.floor_per_axis_deg))
    print(f'Bayes-floor MAE: {corpus.floor_mae_deg:.3f} deg (per axis: {axes})')
    for role in ROLES:
        for figure, neutral in corpus.neutral_mae(role).items():
            print(f'neutral-pose MAE, {role} {figure}: {neutral:.3f} deg '
                  f'({neutral / corpus.floor_mae_deg:.2f} x the floor)')
    text = corpus.text_floors
    if text is not None:
        ratio = text['audio_only']['mean'] / text['text_floor']['mean']
        print(f"text-driven frames: {text['frames']}; text-oracle MAE "
              f"{text['text_floor']['mean']:.3f} deg, best audio-only MAE "
              f"{text['audio_only']['mean']:.3f} deg ({ratio:.2f} x)")
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
