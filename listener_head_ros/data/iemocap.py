"""
IEMOCAP as dialog streams: the interlocutor's audio and the marker wearer's head, whole dialogs.

Layout parsed (the real release, ``IEMOCAP_full_release``)::

    Session{1..5}/dialog/wav/<dialog>.wav             16 kHz stereo (other rates resampled)
    Session{1..5}/dialog/transcriptions/<dialog>.txt  Ses01F_impro01_M000 [007.5712-010.4750]: text
    Session{1..5}/dialog/EmoEvaluation/<dialog>.txt   [6.2901 - 8.2357] <id> neu [v, a, d]
    Session{1..5}/dialog/MOCAP_head/<dialog>.txt      2 header lines, then the columns
                                                      Frame Time pitch roll yaw tra_x tra_y tra_z
    Session{1..5}/sentences/ForcedAlignment/<dialog>/<utterance_id>.wdseg
                                                      word times of an utterance (optional)

Roles.  In a dialog name ``Ses01F_...`` the letter after the session number is the actor who
wore the motion-capture markers: the *listener* of this package.  In an utterance id
``..._M000`` the letter before the index is the actor who *speaks*.  The other actor is the
*interlocutor*: the listener hears them, and each of their utterances is a listener sample
(:class:`~listener_head_ros.data.source.Segment`).  Transcription lines that are not
``<id> [start-end]: text`` with an ``F``/``M`` speaker (``M: breathing``, ``..._MXX0`` ids,
headers, blank lines) are skipped and counted.  Files whose names start with ``.`` (macOS
resource forks found in some copies of the release) are ignored.

Naming exception.  The wav, transcription and EmoEvaluation files of ``Ses05M_script01_1b``
pair with ``MOCAP_head/Ses05M_script01_1.txt``; :data:`MOCAP_ALIASES` lists it, and an alias
is used only when no mocap file has the dialog's own name.

Dialog streams.  :class:`IemocapSource` implements :class:`~listener_head_ros.data.source.
DialogSource`: one stream per dialog with a wav and a mocap file, in the group of its session
(leave-one-session-out).  Its audio is the whole dialog as the listener hears it; its target
``head`` is the marker wearer's head at every model frame, with a validity mask; its
``utterance``/``window`` masks and segments follow :mod:`listener_head_ros.data.windows` with
:attr:`IemocapConfig.tail_seconds`.  :func:`iter_listener_samples` gives the Active Listener
protocol's per-utterance view of the same streams.

Audio channel.  :attr:`IemocapConfig.speaker_channel` (default
:data:`DEFAULT_SPEAKER_CHANNEL`, also the bag converter's default, so that a model is trained
and evaluated on the same audio): ``'speaker'`` is the interlocutor's channel for the whole
dialog, with the female actor on :attr:`IemocapConfig.female_channel` (default ``'left'``; the
synthetic corpus of :mod:`listener_head_ros.data.synthetic_iemocap` follows that rule; the
release does not document it, so check it by ear before relying on it); ``'mix'`` is the mean
of both channels (right whatever the assignment, at the cost of the listener's own voice);
``'left'``/``'right'`` always that channel.

Head pose.  The mocap columns are ``pitch, roll, yaw`` in degrees at 120 fps; they are
reordered to this package's ``(roll, pitch, yaw)`` (``HeadPose`` order, REP-103 names) with
the signs kept as recorded (:attr:`IemocapConfig.axis_signs` flips axes if a robot profile
needs it), converted to radians and expressed relative to the marker wearer's neutral pose:
the per-axis median over every valid mocap frame of the whole dialog.  The head of model
frame ``i`` is the linear interpolation of the mocap track at ``t_i = (i + 1) * hop / sr``,
the end of the hop, matching the causal frames of
:func:`listener_head_ros.features.extract_features`.  The mocap ``Time`` column is taken as
seconds since the start of the dialog wav; rows with a non-finite time are ignored.

NaN policy.  Mocap rows with a NaN angle (and missing rows) are gaps.  A frame whose two
bracketing valid mocap rows are separated by missing rows is *interpolated* linearly across
the gap when the missing span is at most :attr:`IemocapConfig.max_gap_seconds`, and counted
in :attr:`SessionStats.interpolated_frames`.  A frame that needs a longer gap, or lies before
the first / after the last valid row, is *invalid*: its head is 0 and its validity mask
false, so it counts in no loss and no figure.  A listener sample (segment) with an invalid
frame inside its utterance is left out of the figures whole, as the Active Listener protocol
drops it (reasons ``'nan_gap'``/``'outside_mocap'``); its window's valid frames still train.
Every segment left out is counted in :attr:`SessionStats.dropped` by reason.

Roles.  :attr:`IemocapConfig.role` (:mod:`listener_head_ros.roles`) says whose turns a
stream follows.  ``'listener'`` (the default) is all of the above: the interlocutor's channel
in, the wearer's head out, one segment per interlocutor utterance.  ``'speaker'`` trains a
speaking model: the wearer's *own* channel in (``speaker_channel='speaker'`` picks the
wearer's channel; ``'mix'``/``'left'``/``'right'`` as above), the wearer's head out, one
segment per utterance of the wearer's own (its window: the utterance and the pause after it,
up to the next turn); ``missing_*`` then counts the wearer's utterances.  The role is part of
the source's identity (:meth:`IemocapSource.describe`), of the feature cache's index and of
the checkpoints trained on it.

Transcripts.  :attr:`DialogStream.transcripts` holds what a live recogniser would have
published of the *interlocutor's* turns (in either role: a robot's recogniser hears the
person, not itself): :func:`~listener_head_ros.data.transcripts.simulate_recognition` of each
turn's transcribed text over the turn's span, with :attr:`IemocapConfig.asr_latency` and
:attr:`IemocapConfig.incremental_asr`, and with word times from the turn's forced alignment
``sentences/ForcedAlignment/<dialog>/<utterance_id>.wdseg`` (frames from the turn's start)
when there is one: an incremental result after each word, then the final one.  A turn without
an alignment file has only its final result (``unaligned``); a file with lines that do not
parse, or without a word, is treated the same and counted (``bad_alignments``); ``aligned``
counts the others.  The counts are of the interlocutor's turns of the dialogs that have a
stream.

Reference floors.  A corpus may ship ``<release>/`` :data:`FLOORS_FILES` ``[role]`` (the
synthetic generator writes both); :meth:`IemocapSource.floors` passes on its role's, with
the contents of :data:`TEXT_FLOORS_FILE` (the synthetic corpus's text-planted relation)
under ``'text'`` for the listening role when the corpus has one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
import json
from pathlib import Path
import re
from typing import Any, Dict, Iterable, Iterator, List, Optional, Tuple

import numpy as np
import soundfile as sf
import soxr

from listener_head_ros.data.source import (
    DialogSource, DialogStream, INTERLOCUTOR, LEAVE_ONE_GROUP_OUT, LISTENER, SplitScheme, Turn)
from listener_head_ros.data.transcripts import (
    parse_wdseg, RecognitionConfig, simulate_recognition)
from listener_head_ros.data.windows import (
    DEFAULT_TAIL_SECONDS, listening_segments, segment_masks)
from listener_head_ros.features import FeatureConfig
from listener_head_ros.models.base import TranscriptEvent
from listener_head_ros.roles import check_role, LISTENING, SPEAKING
from listener_head_ros.streams import HEAD

SESSIONS: Tuple[int, ...] = (1, 2, 3, 4, 5)
MOCAP_FPS = 120.0
MOCAP_ALIASES: Dict[str, str] = {'Ses05M_script01_1b': 'Ses05M_script01_1'}
HEAD_AXES: Tuple[str, ...] = HEAD.channels
SPEAKER_CHANNELS: Tuple[str, ...] = ('speaker', 'mix', 'left', 'right')
DEFAULT_SPEAKER_CHANNEL = 'speaker'  # the interlocutor's channel: training and bags alike
DROP_REASONS: Tuple[str, ...] = (
    'missing_wav', 'missing_mocap', 'outside_audio', 'outside_mocap', 'nan_gap', 'too_short')
FLOORS_FILE = 'reference_floors.json'  # the listening role's floors
FLOORS_FILES: Dict[str, str] = {LISTENING: FLOORS_FILE,
                                SPEAKING: 'reference_floors_speaking.json'}
TEXT_FLOORS_FILE = 'reference_floors_text.json'  # a text-planted corpus's floors and masks

_DIALOG_RE = re.compile(r'^Ses(?P<session>\d{2})(?P<wearer>[FM])_\S+$')
_UTTERANCE_RE = re.compile(
    r'^(?P<dialog>Ses(?P<session>\d{2})(?P<wearer>[FM])_\S+)_(?P<speaker>[FM])\d+$')
_TRANSCRIPTION_RE = re.compile(
    r'^(?P<id>\S+)\s+\[\s*(?P<start>\d+(?:\.\d*)?)\s*-\s*(?P<end>\d+(?:\.\d*)?)\s*\]:\s?'
    r'(?P<text>.*)$')
_EMO_RE = re.compile(
    r'^\[\s*(?P<start>\d+(?:\.\d*)?)\s*-\s*(?P<end>\d+(?:\.\d*)?)\s*\]\s+(?P<id>\S+)\s+'
    r'(?P<label>\S+)\s+\[(?P<vad>[^\]]*)\]')


@dataclass(frozen=True)
class IemocapConfig:
    """How listener samples are cut from the release (see the module docstring)."""

    features: FeatureConfig = field(default_factory=FeatureConfig)
    role: str = LISTENING  # listener: the interlocutor's turns; speaker: the wearer's own
    speaker_channel: str = DEFAULT_SPEAKER_CHANNEL  # 'speaker' | 'mix' | 'left' | 'right'
    female_channel: str = 'left'  # the female actor's channel for speaker_channel='speaker'
    max_gap_seconds: float = 0.25  # longest mocap gap that is interpolated
    min_seconds: float = 0.5  # shorter utterances are left out of the figures ('too_short')
    tail_seconds: float = DEFAULT_TAIL_SECONDS  # longest listening-window tail
    axis_signs: Tuple[float, float, float] = (1.0, 1.0, 1.0)  # roll, pitch, yaw
    mocap_fps: float = MOCAP_FPS
    asr_latency: float = RecognitionConfig.latency  # s from a word's end to its result
    incremental_asr: bool = RecognitionConfig.incremental  # a result after each aligned word

    def __post_init__(self) -> None:
        check_role(self.role, 'role')
        RecognitionConfig(self.asr_latency, self.incremental_asr)  # raises on a bad latency
        if self.speaker_channel not in SPEAKER_CHANNELS:
            raise ValueError(f'speaker_channel must be one of {SPEAKER_CHANNELS}, '
                             f'not {self.speaker_channel!r}')
        if self.female_channel not in ('left', 'right'):
            raise ValueError(f"female_channel must be 'left' or 'right', "
                             f'not {self.female_channel!r}')
        if min(self.max_gap_seconds, self.min_seconds, self.tail_seconds) < 0.0 or (
                self.mocap_fps <= 0.0):
            raise ValueError('max_gap_seconds, min_seconds and tail_seconds must be >= 0, '
                             'mocap_fps > 0')
        if len(self.axis_signs) != 3:
            raise ValueError('axis_signs needs three values (roll, pitch, yaw)')

    def to_dict(self) -> Dict[str, Any]:
        """Return a JSON-ready dict of every setting, the feature settings included."""
        data = asdict(self)
        data['axis_signs'] = [float(s) for s in self.axis_signs]
        return data

    @property
    def recognition(self) -> RecognitionConfig:
        """Return the simulated recogniser's settings."""
        return RecognitionConfig(self.asr_latency, self.incremental_asr)


@dataclass(frozen=True)
class Utterance:
    """One timed line of a transcription file."""

    utterance_id: str
    start: float  # seconds since the start of the dialog wav
    end: float
    text: str


@dataclass(frozen=True)
class EmotionLabel:
    """The consensus line of an EmoEvaluation block."""

    label: str  # 'neu', 'ang', ..., or 'xxx' when the annotators did not agree
    valence: float
    activation: float
    dominance: float


@dataclass(frozen=True)
class UtteranceId:
    """The parts of an utterance id such as ``Ses01F_impro01_M000``."""

    session: int
    dialog: str
    wearer: str  # 'F' or 'M': the marker wearer (listener)
    speaker: str  # 'F' or 'M': who speaks


@dataclass(frozen=True)
class DialogFiles:
    """The files of one dialog; ``wav``/``mocap``/``emo_evaluation`` are None when absent."""

    session: int
    name: str
    wearer: str
    transcription: Path
    wav: Optional[Path]
    mocap: Optional[Path]
    emo_evaluation: Optional[Path]
    alignments: Optional[Path] = None  # the dialog's ForcedAlignment folder, when present


@dataclass
class ListenerSample:
    """One listener sample of the protocol: a slice of a dialog stream over one utterance."""

    utterance_id: str
    session: int
    dialog: str
    listener: str  # 'F' or 'M': the marker wearer
    speaker: str  # the other actor
    start: float  # seconds since the start of the dialog wav, of the first frame's hop start
    end: float  # seconds, of the last frame's end
    audio: np.ndarray  # (n,) float32 mono: the hops of the utterance's frames
    head: np.ndarray  # (T, 3) float32 roll, pitch, yaw in radians, T = n // hop
    emotion: Optional[str] = None
    vad: Optional[Tuple[float, float, float]] = None  # valence, activation, dominance
    text: str = ''
    interpolated_frames: int = 0


@dataclass
class SessionStats:
    """Counts for one session of a preparation run."""

    dialogs: int = 0  # dialog streams produced
    utterances: int = 0  # listener samples (segments) that count in the figures
    frames: int = 0  # model frames of the dialog streams
    seconds: float = 0.0  # audio of the dialog streams
    valid_frames: int = 0  # frames with a valid head
    interpolated_frames: int = 0
    utterance_frames: int = 0  # frames of the counted utterances
    window_frames: int = 0  # frames of the counted listening windows
    skipped_lines: int = 0  # transcription lines that are not listener/speaker utterances
    aligned: int = 0  # interlocutor utterances with a forced alignment (word times)
    unaligned: int = 0  # interlocutor utterances without one: a final result only
    bad_alignments: int = 0  # alignment files that do not parse: a final result only
    dropped: Dict[str, int] = field(default_factory=dict)  # reason -> utterances left out

    @property
    def hours(self) -> float:
        """Return the dialog streams' audio duration in hours."""
        return self.seconds / 3600.0

    @property
    def n_dropped(self) -> int:
        """Return the number of utterances left out, all reasons together."""
        return sum(self.dropped.values())

    def add(self, other: 'SessionStats') -> None:
        """Accumulate the counts of ``other`` into this one."""
        for name, value in asdict(other).items():
            if name != 'dropped':
                setattr(self, name, getattr(self, name) + value)
        for reason, n in other.dropped.items():
            self.dropped[reason] = self.dropped.get(reason, 0) + n


@dataclass
class PreparationReport:
    """Per-session counts of a pass over the corpus (filled while iterating)."""

    sessions: Dict[int, SessionStats] = field(default_factory=dict)

    def session(self, session: int) -> SessionStats:
        """Return the stats of ``session``, creating them on first use."""
        return self.sessions.setdefault(int(session), SessionStats())

    def total(self) -> SessionStats:
        """Return the sum over sessions."""
        total = SessionStats()
        for stats in self.sessions.values():
            total.add(stats)
        return total

    def format_table(self) -> str:
        """Return a plain-text summary table, one row per session plus the total."""
        header = (f"{'session':>7} {'dialogs':>7} {'utts':>6} {'hours':>7} {'frames':>9} "
                  f"{'valid':>6} {'utt_h':>6} {'win_h':>6} {'interp':>7} {'aligned':>7} "
                  f"{'no_align':>8} {'bad_align':>9} {'dropped':>7}  reasons")
        rows = [header, '-' * len(header)]
        items = [(str(s), self.sessions[s]) for s in sorted(self.sessions)]
        for name, st in items + [('total', self.total())]:
            reasons = ', '.join(f'{r}={n}' for r, n in sorted(st.dropped.items()) if n)
            valid = f'{100.0 * st.valid_frames / st.frames:5.1f}%' if st.frames else '     -'
            rate = 3600.0 * st.frames / st.seconds if st.seconds else 1.0
            rows.append(f'{name:>7} {st.dialogs:>7} {st.utterances:>6} {st.hours:>7.3f} '
                        f'{st.frames:>9} {valid:>6} {st.utterance_frames / rate:>6.3f} '
                        f'{st.window_frames / rate:>6.3f} {st.interpolated_frames:>7} '
                        f'{st.aligned:>7} {st.unaligned:>8} {st.bad_alignments:>9} '
                        f'{st.n_dropped:>7}  {reasons or "-"}')
        return '\n'.join(rows)

    def to_dict(self) -> Dict[str, Any]:
        """Return a JSON-ready dict (session numbers become string keys)."""
        return {str(s): asdict(st) for s, st in sorted(self.sessions.items())}


def parse_utterance_id(utterance_id: str) -> Optional[UtteranceId]:
    """Split ``Ses01F_impro01_M000`` into session, dialog, wearer and speaker (None if odd)."""
    m = _UTTERANCE_RE.match(utterance_id)
    if m is None:
        return None
    return UtteranceId(int(m['session']), m['dialog'], m['wearer'], m['speaker'])


def parse_transcription(path: Path) -> Tuple[List[Utterance], int]:
    """Return the timed utterances of a transcription file and the number of skipped lines."""
    utterances, skipped = [], 0
    for line in Path(path).read_text(encoding='utf-8', errors='replace').splitlines():
        m = _TRANSCRIPTION_RE.match(line.strip())
        if m is None or parse_utterance_id(m['id']) is None:
            skipped += bool(line.strip())
            continue
        start, end = float(m['start']), float(m['end'])
        if end <= start:
            skipped += 1
            continue
        utterances.append(Utterance(m['id'], start, end, m['text'].strip()))
    return utterances, skipped


def parse_emo_evaluation(path: Path) -> Dict[str, EmotionLabel]:
    """Return the consensus label and valence/activation/dominance of each utterance."""
    labels = {}
    for line in Path(path).read_text(encoding='utf-8', errors='replace').splitlines():
        m = _EMO_RE.match(line.strip())
        if m is None:
            continue  # header, blank line or a per-annotator C-/A- line
        try:
            vad = [float(v) for v in m['vad'].split(',')]
        except ValueError:
            vad = []
        if len(vad) != 3:
            vad = [float('nan')] * 3
        labels[m['id']] = EmotionLabel(m['label'], *vad)
    return labels


def read_mocap_head(path: Path) -> Tuple[np.ndarray, np.ndarray]:
    """
    Read a ``MOCAP_head`` file.

    Return ``times`` ``(n,)`` in seconds and ``angles`` ``(n, 3)`` in degrees, reordered to
    ``(roll, pitch, yaw)`` from the file's ``pitch, roll, yaw`` columns; NaN where the file
    has NaN.  The two header lines, short or non-numeric lines and rows with a non-finite
    time are skipped.
    """
    times, angles = [], []
    lines = Path(path).read_text(encoding='utf-8', errors='replace').splitlines()
    for line in lines[2:]:
        parts = line.split()
        if len(parts) < 5:
            continue
        try:
            t, pitch, roll, yaw = (float(v) for v in parts[1:5])
        except ValueError:
            continue
        if np.isfinite(t):
            times.append(t)
            angles.append((roll, pitch, yaw))
    times_arr = np.asarray(times, dtype=np.float64)
    angles_arr = np.asarray(angles, dtype=np.float64).reshape(-1, 3)
    if times_arr.size and np.any(np.diff(times_arr) <= 0.0):
        order = np.argsort(times_arr, kind='stable')
        times_arr, angles_arr = times_arr[order], angles_arr[order]
        keep = np.concatenate(([True], np.diff(times_arr) > 0.0))
        times_arr, angles_arr = times_arr[keep], angles_arr[keep]
    return times_arr, angles_arr


@dataclass
class HeadSamples:
    """A head track sampled at model frames under the NaN policy."""

    head: np.ndarray  # (T, 3) float32 radians relative to the neutral; 0 where invalid
    valid: np.ndarray  # (T,) bool
    interpolated: np.ndarray  # (T,) bool: valid, bridged across missing rows
    outside: np.ndarray  # (T,) bool: before the first or after the last mocap row


class HeadTrack:
    """
    A dialog's head track, ready to be sampled at model frame times.

    Keeps the valid (all-finite) mocap rows, the per-axis median neutral pose and the NaN
    policy of the module docstring.
    """

    def __init__(self, times: np.ndarray, angles_deg: np.ndarray, config: IemocapConfig) -> None:
        valid = np.all(np.isfinite(angles_deg), axis=1)
        self.times = times[valid]
        self.angles_deg = angles_deg[valid]
        self.first_time = float(times[0]) if times.size else float('nan')
        self.last_time = float(times[-1]) if times.size else float('nan')
        self.neutral_deg = (np.median(self.angles_deg, axis=0) if self.times.size
                            else np.zeros(3))
        self._period = 1.0 / config.mocap_fps
        self._max_gap = config.max_gap_seconds
        self._signs = np.asarray(config.axis_signs, dtype=np.float64)

    def sample(self, frame_times: np.ndarray) -> HeadSamples:
        """Return the head at ``frame_times`` (seconds), with validity under the NaN policy."""
        t = np.asarray(frame_times, dtype=np.float64)
        outside = ~((self.first_time <= t) & (t <= self.last_time))
        vt = self.times
        if vt.size < 2:
            none = np.zeros(t.size, dtype=bool)
            return HeadSamples(np.zeros((t.size, 3), np.float32), none, none, outside)
        k = np.clip(np.searchsorted(vt, t, side='right'), 1, vt.size - 1)
        missing = (vt[k] - vt[k - 1]) - self._period  # seconds of missing rows in the bracket
        valid = (~outside & (t >= vt[0]) & (t <= vt[-1])
                 & (missing <= self._max_gap + 1e-9))
        head = np.stack([np.interp(t, vt, self.angles_deg[:, a]) for a in range(3)], axis=1)
        head = np.deg2rad((head - self.neutral_deg) * self._signs)
        head[~valid] = 0.0
        return HeadSamples(head.astype(np.float32), valid, valid & (missing > 0.5 * self._period),
                           outside)


def resolve_root(root: Path) -> Path:
    """Return the folder holding ``Session1..5`` (``root`` or ``root/IEMOCAP_full_release``)."""
    root = Path(root)
    if not any(root.glob('Session[1-5]')) and (root / 'IEMOCAP_full_release').is_dir():
        root = root / 'IEMOCAP_full_release'
    return root


def find_dialogs(root: Path, sessions: Iterable[int] = SESSIONS) -> List[DialogFiles]:
    """List the dialogs of ``sessions`` (by transcription file), with their other files."""
    root = resolve_root(root)
    dialogs = []
    for session in sessions:
        base = root / f'Session{int(session)}' / 'dialog'
        if not (base / 'transcriptions').is_dir():
            raise FileNotFoundError(
                f'{base / "transcriptions"} not found: expected the IEMOCAP release layout '
                f'Session{{1..5}}/dialog/{{wav,transcriptions,EmoEvaluation,MOCAP_head}} '
                f'under {root}')
        for path in sorted((base / 'transcriptions').glob('*.txt')):
            m = _DIALOG_RE.match(path.stem)
            if path.name.startswith('.') or m is None:
                continue
            mocap = base / 'MOCAP_head' / f'{path.stem}.txt'
            if not mocap.is_file() and path.stem in MOCAP_ALIASES:
                mocap = base / 'MOCAP_head' / f'{MOCAP_ALIASES[path.stem]}.txt'
            wav = base / 'wav' / f'{path.stem}.wav'
            emo = base / 'EmoEvaluation' / f'{path.stem}.txt'
            aligned = base.parent / 'sentences' / 'ForcedAlignment' / path.stem
            dialogs.append(DialogFiles(
                session=int(session), name=path.stem, wearer=m['wearer'], transcription=path,
                wav=wav if wav.is_file() else None, mocap=mocap if mocap.is_file() else None,
                emo_evaluation=emo if emo.is_file() else None,
                alignments=aligned if aligned.is_dir() else None))
    return dialogs


def _channel(wav: np.ndarray, speaker: str, config: IemocapConfig) -> np.ndarray:
    if wav.shape[1] == 1:
        return wav[:, 0]
    mode = config.speaker_channel
    if mode == 'mix':
        return wav.mean(axis=1)
    if mode == 'speaker':
        mode = config.female_channel if speaker == 'F' else (
            'right' if config.female_channel == 'left' else 'left')
    return wav[:, 0 if mode == 'left' else 1]


def _read_wav(path: Path, sample_rate: int) -> np.ndarray:
    data, rate = sf.read(str(path), dtype='float32', always_2d=True)
    if rate != sample_rate:
        data = soxr.resample(data, rate, sample_rate).astype(np.float32)
    return data


def _turns(utterances: List[Utterance], wearer: str,
           emotions: Dict[str, EmotionLabel]) -> List[Turn]:
    turns = []
    for utt in utterances:
        speaker = parse_utterance_id(utt.utterance_id).speaker
        label = emotions.get(utt.utterance_id)
        vad = [label.valence, label.activation, label.dominance] if label else None
        meta = {'emotion': label.label if label else None,
                'vad': vad if vad and all(np.isfinite(vad)) else None, 'text': utt.text}
        turns.append(Turn(utt.utterance_id, speaker, LISTENER if speaker == wearer
                          else INTERLOCUTOR, utt.start, utt.end, meta))
    return turns


def _count(stats: SessionStats, reason: str, n: int = 1) -> None:
    stats.dropped[reason] = stats.dropped.get(reason, 0) + n


def transcripts(dialog: DialogFiles, turns: Iterable[Turn], config: IemocapConfig,
                stats: SessionStats) -> List[TranscriptEvent]:
    """Return the recognition results of the interlocutor's turns, counting alignments."""
    events: List[TranscriptEvent] = []
    for turn in turns:
        if turn.role != INTERLOCUTOR:
            continue
        path = (dialog.alignments / f'{turn.utterance_id}.wdseg' if dialog.alignments
                else None)
        words = None
        if path is None or not path.is_file():
            stats.unaligned += 1
        else:
            try:
                words, bad = parse_wdseg(path, turn.start)
            except OSError:
                words, bad = [], 1
            if bad or not words:
                stats.bad_alignments += 1
                words = None
            else:
                stats.aligned += 1
        events += simulate_recognition(str(turn.meta.get('text', '')), turn.start, turn.end,
                                       words, config.recognition)
    return sorted(events, key=lambda e: e.time)


def dialog_stream(dialog: DialogFiles, config: IemocapConfig,
                  report: Optional[PreparationReport] = None) -> Optional[DialogStream]:
    """Return the stream of one dialog (None without wav or mocap), counting into ``report``."""
    return _stream_and_head(dialog, config, report)[0]


def _stream_and_head(dialog: DialogFiles, config: IemocapConfig,
                     report: Optional[PreparationReport]
                     ) -> Tuple[Optional[DialogStream], Optional[HeadSamples]]:
    stats = (report if report is not None else PreparationReport()).session(dialog.session)
    utterances, skipped = parse_transcription(dialog.transcription)
    stats.skipped_lines += skipped
    emotions = parse_emo_evaluation(dialog.emo_evaluation) if dialog.emo_evaluation else {}
    turns = _turns(utterances, dialog.wearer, emotions)
    followed = INTERLOCUTOR if config.role == LISTENING else LISTENER
    missing = 'missing_wav' if dialog.wav is None else (
        'missing_mocap' if dialog.mocap is None else '')
    if missing:
        counted = sum(t.role == followed for t in turns)
        if counted:
            _count(stats, missing, counted)
        return None, None
    fcfg = config.features
    sr, hop = fcfg.sample_rate, fcfg.hop_length
    interlocutor = 'M' if dialog.wearer == 'F' else 'F'
    heard = interlocutor if config.role == LISTENING else dialog.wearer
    wav = _read_wav(dialog.wav, sr)
    n_frames = wav.shape[0] // hop
    audio = np.ascontiguousarray(_channel(wav[:n_frames * hop], heard, config),
                                 dtype=np.float32)
    track = HeadTrack(*read_mocap_head(dialog.mocap), config)
    head = track.sample(hop * np.arange(1, n_frames + 1) / sr)
    segments = listening_segments(turns, n_frames, sr, hop, config.tail_seconds,
                                  config.min_seconds, followed)
    for i, seg in enumerate(segments):
        if not seg.excluded and head.outside[seg.utterance].any():
            segments[i] = replace(seg, excluded='outside_mocap')
        elif not seg.excluded and not head.valid[seg.utterance].all():
            segments[i] = replace(seg, excluded='nan_gap')
    utterance, window = segment_masks(segments, n_frames)
    stats.dialogs += 1
    stats.frames += n_frames
    stats.seconds += n_frames * hop / sr
    stats.valid_frames += int(head.valid.sum())
    stats.interpolated_frames += int(head.interpolated.sum())
    for seg in segments:
        if seg.excluded:
            _count(stats, seg.excluded)
            continue
        stats.utterances += 1
        stats.utterance_frames += seg.end - seg.start
        stats.window_frames += int(head.valid[seg.window].sum())
    return DialogStream(
        dialog_id=dialog.name, group=str(dialog.session), audio=audio, sample_rate=sr,
        hop_length=hop, targets={HEAD.name: head.head}, valid={HEAD.name: head.valid},
        utterance=utterance, window=window, segments=segments, turns=turns,
        meta={'session': dialog.session, 'listener': dialog.wearer,
              'interlocutor': interlocutor, 'role': config.role},
        transcripts=transcripts(dialog, turns, config, stats)), head


def listener_samples(stream: DialogStream, interpolated: Optional[np.ndarray] = None
                     ) -> Iterator[ListenerSample]:
    """
    Yield the protocol's listener samples of a stream: its counted segments' utterances.

    ``interpolated`` (T,) marks the frames bridged across mocap gaps, to count them.
    """
    hop, sr = stream.hop_length, stream.sample_rate
    interpolated = (interpolated if interpolated is not None
                    else np.zeros(stream.n_frames, dtype=bool))
    turns = {t.utterance_id: t for t in stream.turns}
    for seg in stream.segments:
        if seg.excluded:
            continue
        turn = turns[seg.utterance_id]
        vad = turn.meta.get('vad')
        yield ListenerSample(
            utterance_id=seg.utterance_id, session=int(stream.meta['session']),
            dialog=stream.dialog_id, listener=stream.meta['listener'], speaker=turn.speaker,
            start=seg.start * hop / sr, end=seg.end * hop / sr,
            audio=stream.audio[seg.start * hop:seg.end * hop],
            head=stream.targets[HEAD.name][seg.utterance], emotion=turn.meta.get('emotion'),
            vad=tuple(vad) if vad else None, text=turn.meta.get('text', ''),
            interpolated_frames=int(interpolated[seg.utterance].sum()))


def iter_dialog_samples(dialog: DialogFiles, config: IemocapConfig,
                        report: Optional[PreparationReport] = None) -> Iterator[ListenerSample]:
    """Yield the listener samples of one dialog, counting into ``report`` if given."""
    stream, head = _stream_and_head(dialog, config, report)
    if stream is not None:
        yield from listener_samples(stream, head.interpolated)


def iter_listener_samples(root: Path, sessions: Iterable[int] = SESSIONS,
                          config: Optional[IemocapConfig] = None,
                          report: Optional[PreparationReport] = None
                          ) -> Iterator[ListenerSample]:
    """
    Yield every listener sample of ``sessions`` under ``root``, in dialog and time order.

    ``root`` is ``IEMOCAP_full_release`` or its parent.  Pass a :class:`PreparationReport`
    to collect the per-session counts while iterating.
    """
    config = config if config is not None else IemocapConfig()
    for dialog in find_dialogs(root, sessions):
        yield from iter_dialog_samples(dialog, config, report)


class IemocapSource(DialogSource):
    """The IEMOCAP release (or a corpus in its layout) as dialog streams, one group a session."""

    name = 'iemocap'

    def __init__(self, root: Path, config: Optional[IemocapConfig] = None,
                 sessions: Iterable[int] = SESSIONS) -> None:
        self.root = resolve_root(root)
        self.config = config if config is not None else IemocapConfig()
        self.sessions = tuple(sorted({int(s) for s in sessions}))
        self.preparation = PreparationReport()

    @property
    def feature_config(self) -> FeatureConfig:
        """Return the feature settings of :attr:`config`."""
        return self.config.features

    @property
    def targets(self) -> Tuple[str, ...]:
        """Return the one target stream: the marker wearer's head."""
        return (HEAD.name,)

    @property
    def role(self) -> str:
        """Return the role of :attr:`config`: whose turns the streams follow."""
        return self.config.role

    @property
    def split(self) -> SplitScheme:
        """Return leave-one-session-out over the selected sessions."""
        return SplitScheme(LEAVE_ONE_GROUP_OUT, tuple(str(s) for s in self.sessions))

    def describe(self) -> Dict[str, Any]:
        """Return the release folder, sessions, settings and shipped floors."""
        return {'name': self.name, 'root': str(self.root.resolve()),
                'sessions': list(self.sessions), 'config': self.config.to_dict(),
                'floors': self.floors()}

    def dialog_ids(self) -> List[str]:
        """Return the dialogs of the selected sessions (by transcription file)."""
        return [d.name for d in find_dialogs(self.root, self.sessions)]

    def dialogs(self) -> Iterator[DialogStream]:
        """Yield the stream of every dialog with a wav and a mocap file."""
        self.preparation = PreparationReport()
        for session in self.sessions:
            self.preparation.session(session)
        for dialog in find_dialogs(self.root, self.sessions):
            stream = dialog_stream(dialog, self.config, self.preparation)
            if stream is not None:
                yield stream

    def report(self) -> Dict[str, Any]:
        """Return the per-session counts of the last pass."""
        return self.preparation.to_dict()

    def summary_table(self) -> str:
        """Return the per-session table of the last pass."""
        return self.preparation.format_table()

    def floors(self) -> Optional[Dict[str, Any]]:
        """Return the release folder's floors of the role (and text floors), if any."""
        path, text = self.root / FLOORS_FILES[self.config.role], self.root / TEXT_FLOORS_FILE
        if not path.is_file():
            return None
        floors = json.loads(path.read_text(encoding='utf-8'))
        if self.config.role == LISTENING and text.is_file():
            floors['text'] = json.loads(text.read_text(encoding='utf-8'))
        return floors
