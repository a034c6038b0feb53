"""
Convert IEMOCAP dialogs (the real release layout, or the synthetic corpus) to rosbag2.

One bag per dialog, MCAP by default (sqlite3 optional), metadata version 8 so that Humble and
later read it. Bag time is :attr:`BagConfig.epoch_ns` plus the dialog time (seconds since the
start of the dialog wav). Topics:

``/audio/audio`` (``audio_common_msgs/msg/AudioData``)
    The interlocutor's speech as a microphone driver publishes it: S16LE mono chunks of
    ``chunk_frames`` (512) samples at the model rate (16 kHz), each stamped at the time of its
    *last* sample (when a driver could publish it). The channel follows
    :attr:`IemocapConfig.speaker_channel`: ``'mix'`` (the mean of both channels), ``'left'`` /
    ``'right'``, or ``'speaker'``: the channel of the actor who does *not* wear the markers,
    for the whole dialog (the interlocutor of the listener, so it equals the speaker channel of
    every listener sample). A trailing partial chunk is dropped.
``/audio/audio_info`` (``audio_common_msgs/msg/AudioInfo``)
    Once, at the bag start: 1 channel, 16000 Hz, ``S16LE``, ``wave``.
``/listener/head_pose_truth`` (``listener_head_ros/msg/HeadPose``)
    The marker wearer's (the listener's) head at the mocap rate (120 Hz): roll, pitch, yaw in
    radians relative to the wearer's per-dialog median neutral pose, the same values that
    :class:`listener_head_ros.data.iemocap.HeadTrack` gives training. Mocap rows with a NaN
    angle are not written, so a gap in the truth is a gap between messages.
``/speaker_turn`` (``std_msgs/msg/String``)
    JSON events at each transcribed utterance's start and end: ``{"event": "start"|"end",
    "utterance": id, "speaker": "F"|"M", "listener": "F"|"M", "dialog": name, "start": s,
    "end": s}`` (``start``/``end`` in dialog seconds). The listener samples are the turns whose
    speaker is not the listener.
``/humans/voices/anonymous_speaker/speech`` (``hri_msgs/msg/LiveSpeech``, :data:`TRANSCRIPT_TOPIC`)
    What a live speech recogniser would have published of the interlocutor's utterances, as
    the IEMOCAP source gives training (:attr:`DialogStream.transcripts`, made by
    :func:`listener_head_ros.data.iemocap.transcripts`): an incremental result after each
    word of the utterance's forced alignment (``incremental`` set, ``final`` empty), then the
    final one (``final`` set, ``incremental`` empty), each at its publication time (the end of
    the audio it covers plus :attr:`IemocapConfig.asr_latency`, ``--asr-latency``) in bag
    time and header stamp, with its ``confidence`` and ``locale`` ``'en_US'``. Results
    published after the (cut) audio ends are not written. A bag without this topic (older
    bags) has no transcripts.

Run ``python -m listener_head_ros.bags.convert --help`` (or ``training/make_bag.py``).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
import json
from pathlib import Path
import sys
from typing import Iterable, List, Optional, Sequence

import numpy as np
from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability
from rosbags.interfaces import QosTime
from rosbags.rosbag2 import StoragePlugin, Writer, WriterError

from listener_head_ros.audio.pcm import encode_pcm
from listener_head_ros.bags.topics import (  # noqa: F401 - the bag's topics, re-exported
    AUDIO_INFO_TOPIC, AUDIO_TOPIC, PREDICTION_TOPIC, TRANSCRIPT_LOCALE, TRANSCRIPT_TOPIC,
    TRUTH_TOPIC, TURN_TOPIC)
from listener_head_ros.bags.typestore import (
    AUDIO_DATA, AUDIO_INFO, HEAD_POSE, LIVE_SPEECH, listener_typestore, STRING)
from listener_head_ros.data.iemocap import (
    _channel, _read_wav, _turns, DEFAULT_SPEAKER_CHANNEL, DialogFiles, find_dialogs, HeadTrack,
    IemocapConfig, parse_transcription, parse_utterance_id, read_mocap_head, SESSIONS,
    SessionStats, SPEAKER_CHANNELS, transcripts)
from listener_head_ros.models.base import TranscriptEvent

DEFAULT_EPOCH_NS = 1_700_000_000 * 10 ** 9
STORAGES = {'mcap': StoragePlugin.MCAP, 'sqlite3': StoragePlugin.SQLITE3}
BAG_VERSION = 8

_INFINITE = QosTime(sec=2147483647, nsec=4294967295)
_ZERO = QosTime(sec=0, nsec=0)


def offered_qos(latched: bool = False) -> List[Qos]:
    """Return the offered QoS of a topic: reliable, volatile or transient-local (latched)."""
    return [Qos(history=QosHistory.KEEP_LAST, depth=1 if latched else 10,
                reliability=QosReliability.RELIABLE,
                durability=(QosDurability.TRANSIENT_LOCAL if latched
                            else QosDurability.VOLATILE),
                deadline=_INFINITE, lifespan=_INFINITE, liveliness=QosLiveliness.AUTOMATIC,
                liveliness_lease_duration=_INFINITE, avoid_ros_namespace_conventions=False)]


@dataclass(frozen=True)
class BagConfig:
    """How a dialog becomes a bag."""

    storage: str = 'mcap'  # 'mcap' | 'sqlite3'
    chunk_frames: int = 512  # samples per AudioData message
    epoch_ns: int = DEFAULT_EPOCH_NS  # bag time of dialog time 0
    max_seconds: Optional[float] = None  # cut the dialog after this many seconds
    iemocap: IemocapConfig = field(default_factory=IemocapConfig)  # as training prepares

    def __post_init__(self) -> None:
        if self.storage not in STORAGES:
            raise ValueError(f'storage must be one of {sorted(STORAGES)}, not {self.storage!r}')
        if self.chunk_frames < 1:
            raise ValueError('chunk_frames must be positive')
        if self.max_seconds is not None and not self.max_seconds > 0:
            raise ValueError('max_seconds must be positive')


@dataclass(frozen=True)
class BagSummary:
    """What one converted bag holds."""

    path: Path
    dialog: str
    listener: str  # the marker wearer
    duration_s: float
    counts: dict  # topic -> messages
    listener_turns: int  # turns of the other actor (the listener samples)


def stamp(ns: int) -> dict:
    """Return ``builtin_interfaces/Time`` fields for a nanosecond time."""
    return {'sec': int(ns // 10 ** 9), 'nanosec': int(ns % 10 ** 9)}


def header(store, ns: int, frame_id: str):
    """Return a ``std_msgs/Header`` of this typestore at ``ns``."""
    Time = store.types['builtin_interfaces/msg/Time']
    return store.types['std_msgs/msg/Header'](stamp=Time(**stamp(ns)), frame_id=frame_id)


def head_pose_message(store, ns: int, rpy: Sequence[float], frame_id: str = 'head'):
    """Return a ``listener_head_ros/msg/HeadPose`` of this typestore."""
    Vector3 = store.types['geometry_msgs/msg/Vector3']
    return store.types[HEAD_POSE](
        header=header(store, ns, frame_id), roll=float(rpy[0]), pitch=float(rpy[1]),
        yaw=float(rpy[2]), has_angular_velocity=False, angular_velocity=Vector3(x=0.0, y=0.0,
                                                                                z=0.0))


def live_speech_message(store, ns: int, event: TranscriptEvent, frame_id: str = ''):
    """Return the ``hri_msgs/msg/LiveSpeech`` of a recognition result, stamped at ``ns``."""
    return store.types[LIVE_SPEECH](
        header=header(store, ns, frame_id), incremental='' if event.final else event.text,
        final=event.text if event.final else '', confidence=float(event.confidence),
        locale=TRANSCRIPT_LOCALE, language='')


def dialog_audio(dialog: DialogFiles, config: IemocapConfig) -> np.ndarray:
    """Return the interlocutor's mono audio of a whole dialog at the model rate (float32)."""
    wav = _read_wav(dialog.wav, config.features.sample_rate)
    interlocutor = 'M' if dialog.wearer == 'F' else 'F'
    return np.ascontiguousarray(_channel(wav, interlocutor, config), dtype=np.float32)


def convert_dialog(dialog: DialogFiles, out: Path, config: Optional[BagConfig] = None
                   ) -> BagSummary:
    """Write the bag of one dialog at ``out`` (a new directory); return its summary."""
    config = config or BagConfig()
    if dialog.wav is None or dialog.mocap is None:
        raise FileNotFoundError(f'dialog {dialog.name} has no wav or no MOCAP_head file')
    icfg = config.iemocap
    rate = icfg.features.sample_rate
    audio = dialog_audio(dialog, icfg)
    if config.max_seconds is not None:
        audio = audio[:int(round(config.max_seconds * rate))]
    duration = audio.size / rate
    track = HeadTrack(*read_mocap_head(dialog.mocap), icfg)
    utterances, _ = parse_transcription(dialog.transcription)
    store, epoch = listener_typestore(), config.epoch_ns
    ns = (lambda seconds: epoch + int(round(seconds * 1e9)))
    counts = {AUDIO_TOPIC: 0, AUDIO_INFO_TOPIC: 0, TRUTH_TOPIC: 0, TURN_TOPIC: 0,
              TRANSCRIPT_TOPIC: 0}
    listener_turns = 0
    with Writer(out, version=BAG_VERSION, storage_plugin=STORAGES[config.storage]) as writer:
        writer.set_custom_data('listener_head_ros.dialog', json.dumps({
            'dialog': dialog.name, 'session': dialog.session, 'listener': dialog.wearer,
            'speaker_channel': icfg.speaker_channel, 'epoch_ns': epoch,
            'asr_latency': icfg.asr_latency, 'incremental_asr': icfg.incremental_asr}))
        info_conn = writer.add_connection(AUDIO_INFO_TOPIC, AUDIO_INFO, typestore=store,
                                          offered_qos_profiles=offered_qos(latched=True))
        audio_conn = writer.add_connection(AUDIO_TOPIC, AUDIO_DATA, typestore=store,
                                           offered_qos_profiles=offered_qos())
        truth_conn = writer.add_connection(TRUTH_TOPIC, HEAD_POSE, typestore=store,
                                           offered_qos_profiles=offered_qos())
        turn_conn = writer.add_connection(TURN_TOPIC, STRING, typestore=store,
                                          offered_qos_profiles=offered_qos())
        speech_conn = writer.add_connection(TRANSCRIPT_TOPIC, LIVE_SPEECH, typestore=store,
                                            offered_qos_profiles=offered_qos())
        events = [(epoch, 0, info_conn, store.types[AUDIO_INFO](
            channels=1, sample_rate=rate, sample_format='S16LE', bitrate=rate * 16,
            coding_format='wave'))]
        chunk = config.chunk_frames
        for index in range(audio.size // chunk):
            payload = np.frombuffer(encode_pcm(audio[index * chunk:(index + 1) * chunk],
                                               'S16LE'), dtype=np.uint8)
            events.append((ns((index + 1) * chunk / rate), 1, audio_conn,
                           store.types[AUDIO_DATA](data=payload)))
        inside = (track.times >= 0.0) & (track.times <= duration)
        signs = np.asarray(icfg.axis_signs, dtype=np.float64)
        truth = np.deg2rad((track.angles_deg[inside] - track.neutral_deg) * signs)
        for t, rpy in zip(track.times[inside], truth):
            events.append((ns(t), 2, truth_conn, head_pose_message(store, ns(t), rpy)))
        for utt in utterances:
            speaker = parse_utterance_id(utt.utterance_id).speaker
            if utt.start >= duration:
                continue
            end = min(utt.end, duration)
            listener_turns += speaker != dialog.wearer
            for event, t in (('start', utt.start), ('end', end)):
                text = json.dumps({'event': event, 'utterance': utt.utterance_id,
                                   'speaker': speaker, 'listener': dialog.wearer,
                                   'dialog': dialog.name, 'start': utt.start, 'end': end})
                events.append((ns(t), 3, turn_conn, store.types[STRING](data=text)))
        heard = transcripts(dialog, _turns(utterances, dialog.wearer, {}), icfg, SessionStats())
        for result in heard:
            if result.time <= duration:
                events.append((ns(result.time), 4, speech_conn,
                               live_speech_message(store, ns(result.time), result)))
        events.sort(key=lambda e: (e[0], e[1]))
        for when, _, conn, msg in events:
            writer.write(conn, when, store.serialize_cdr(msg, conn.msgtype))
            counts[conn.topic] += 1
    return BagSummary(Path(out), dialog.name, dialog.wearer, duration, counts, listener_turns)


def convert_corpus(root: Path, out_dir: Path, sessions: Iterable[int] = SESSIONS,
                   dialogs: Optional[Sequence[str]] = None,
                   config: Optional[BagConfig] = None) -> List[BagSummary]:
    """Convert the selected dialogs (all by default) of ``root`` into ``out_dir/<dialog>``."""
    config = config or BagConfig()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    found = find_dialogs(root, sessions)
    if dialogs:
        missing = sorted(set(dialogs) - {d.name for d in found})
        if missing:
            raise FileNotFoundError(f'dialog(s) not found under {root}: {", ".join(missing)}')
        found = [d for d in found if d.name in set(dialogs)]
    return [convert_dialog(d, out_dir / d.name, config) for d in found
            if d.wav is not None and d.mocap is not None]


def main(argv: Optional[List[str]] = None) -> int:
    """Convert dialogs to bags from the command line; return a process exit code."""
    parser = argparse.ArgumentParser(
        description='Convert IEMOCAP dialogs (or the synthetic corpus) to rosbag2 bags, one '
                    'per dialog.')
    parser.add_argument('root', type=Path,
                        help='IEMOCAP_full_release (or its parent); add --synthetic to '
                             'generate a synthetic corpus there first')
    parser.add_argument('out_dir', type=Path, help='one bag directory per dialog goes here')
    parser.add_argument('--synthetic', action='store_true',
                        help='generate a small synthetic corpus under ROOT first')
    parser.add_argument('--sessions', type=int, nargs='+', default=None)
    parser.add_argument('--dialogs', nargs='+', default=None, help='dialog names to convert')
    parser.add_argument('--storage', choices=sorted(STORAGES), default='mcap')
    parser.add_argument('--speaker-channel', default=DEFAULT_SPEAKER_CHANNEL,
                        choices=SPEAKER_CHANNELS)
    parser.add_argument('--female-channel', default='left', choices=('left', 'right'))
    parser.add_argument('--chunk-frames', type=int, default=512)
    parser.add_argument('--max-seconds', type=float, default=None,
                        help='cut each dialog after this many seconds')
    parser.add_argument('--asr-latency', type=float, default=IemocapConfig.asr_latency,
                        help='seconds from the end of the audio a recognition result covers '
                             'to its publication on the transcript topic')
    args = parser.parse_args(argv)
    sessions = args.sessions
    if args.synthetic:
        from listener_head_ros.data.synthetic_iemocap import generate_corpus, SyntheticConfig
        corpus = generate_corpus(args.root, SyntheticConfig(
            sessions=tuple(sessions or (1,)), dialogs_per_session=2, turns_per_dialog=6))
        sessions = sessions or (1,)
        print(f'synthetic corpus: {corpus.root}')
    try:
        config = BagConfig(storage=args.storage, chunk_frames=args.chunk_frames,
                           max_seconds=args.max_seconds,
                           iemocap=IemocapConfig(speaker_channel=args.speaker_channel,
                                                 female_channel=args.female_channel,
                                                 asr_latency=args.asr_latency))
        summaries = convert_corpus(args.root, args.out_dir, sessions or SESSIONS, args.dialogs,
                                   config)
    except (FileNotFoundError, ValueError, OSError, WriterError) as error:
        print(f'make_bag: {error}', file=sys.stderr)
        return 2
    for s in summaries:
        counts = ', '.join(f'{topic} {n}' for topic, n in s.counts.items())
        print(f'{s.path}: {s.duration_s:.1f} s, listener {s.listener}, '
              f'{s.listener_turns} listener turns; {counts}')
    if not summaries:
        print('make_bag: no dialog with both a wav and a MOCAP_head file', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
