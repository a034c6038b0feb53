"""
ros4hri voices (REP-155) as the listener's audio: hear the voice that is speaking, only it.

:class:`VoiceInput` subscribes to ``<prefix>/tracked`` (``hri_msgs/IdsList``) and, for each
tracked voice, to ``<prefix>/<id>/audio`` (``audio_common_msgs/AudioData``) and
``<prefix>/<id>/is_speaking`` (``std_msgs/Bool``), and, when the owner passes ``on_speech``, to
``<prefix>/<id>/speech`` (``hri_msgs/LiveSpeech``, the voice's recognition results, as asr_vosk
publishes them). The per-voice subscriptions are created when a voice appears in the tracked
list and destroyed when it leaves it, and all of them on :meth:`VoiceInput.close`. Which voice
is followed is decided by the ROS-free rule of :mod:`listener_head_ros.voice_selection` (the
newest speaker, with a hold time on the followed voice's silence and an onset time on the
other's speech). Only the followed voice's audio messages reach ``on_audio``, and only its
LiveSpeech messages reach ``on_speech``; the others are counted and dropped. A result that
arrives once its voice is no longer followed is dropped too: it belongs to the previous
speaker. ``on_switch(old, new)`` is called at every change of the followed voice (either may
be None), before the first audio of the new voice is forwarded and after the last of the old.
The owner decides what a switch does to its model; the recommended rule is in
:mod:`listener_head_ros.voice_selection`. The rule's time is the node's clock: ROS time, so sim
time under ``use_sim_time`` (as in bag replay).

What the upstream definitions say, and where they differ:

- ``hri_msgs/IdsList`` is ``std_msgs/Header header`` and ``string[] ids`` (ros4hri/hri_msgs).
- REP-155 names the per-voice audio type ``audio_msgs/AudioData``, a package ROS 2 does not
  have; the ros4hri nodes (asr_vosk) republish ``audio_common_msgs/AudioData`` of the
  ros-drivers flavour (``uint8[] data``), which is what is subscribed here. No per-voice
  ``AudioInfo`` exists: the payload is decoded with the owner's format (the listener node's
  ``audio_info`` topic, else its ``input.*`` settings), the same for every voice.
- REP-155 suggests ids made of random hex characters; an id that starts with a digit (or holds
  a character other than letters, digits and '_') makes no valid ROS 2 topic name. Such ids
  cannot be subscribed: they are refused, counted (``rejected_ids``) and logged.
- QoS: REP-155 sets none. asr_vosk publishes ``/tracked`` with the default QoS (reliable,
  volatile) and depth 1, re-published every second ("the topic is not latched"), and its
  ``is_speaking``, ``audio`` and ``speech`` reliable with depth 10 (``speech`` is subscribed
  so: :data:`SPEECH_QOS`); rqt_chat publishes ``/tracked``
  reliable and transient-local. libhri subscribes to ``/tracked`` and ``is_speaking`` with
  ``SystemDefaultsQoS``, which Fast DDS makes best effort and volatile (measured here). The
  reliable, volatile subscriptions here match all those publishers and lose no list or
  ``is_speaking`` edge (a transient-local one would receive nothing from the volatile
  publishers). The cost: a list latched before this input joined arrives only with the next
  publication. For a best-effort publisher, pass ``tracked_qos`` / ``speaking_qos`` (e.g.
  ``qos_profile_sensor_data``).

Every callback may run in a MultiThreadedExecutor: one lock orders them, and ``on_audio``,
``on_speech`` and ``on_switch`` are called under it (they must not call
:meth:`VoiceInput.close`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
import functools
import re
import threading
from typing import Any, Callable, Dict, FrozenSet, Iterable, Optional, Tuple

from audio_common_msgs.msg import AudioData
from rclpy.callback_groups import CallbackGroup
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.exceptions import InvalidTopicNameException
from rclpy.expand_topic_name import expand_topic_name
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rclpy.subscription import Subscription
from rclpy.validate_full_topic_name import validate_full_topic_name
from std_msgs.msg import Bool

from listener_head_ros.ros.callbacks import CallbackFailures
from listener_head_ros.voice_selection import (
    VoiceSelectionConfig, VoiceSelector, VoiceSwitch)

try:
    from hri_msgs.msg import IdsList, LiveSpeech
except ImportError:
    IdsList = LiveSpeech = None

VOICES_NAMESPACE = '/humans/voices'
"""Where REP-155 puts the voices: ``/tracked`` and one ``/<id>/`` namespace per voice."""
TRACKED_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                         durability=DurabilityPolicy.VOLATILE)
"""QoS of ``/tracked``: the latest list is all that counts; reliable, as ros4hri publishes it."""
SPEAKING_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE,
                          durability=DurabilityPolicy.VOLATILE)
"""QoS of ``is_speaking``: reliable and depth 10, as asr_vosk publishes it; no edge is lost."""
SPEECH_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE,
                        durability=DurabilityPolicy.VOLATILE)
"""QoS of ``speech``: reliable and depth 10, as asr_vosk publishes it; no result is lost."""
# Voices come and go while an executor spins: created without QoS event handlers, which are
# waitables that an executor building its wait set cannot see destroyed (ros2/rclpy#1284).
_NO_EVENTS = SubscriptionEventCallbacks(use_default_callbacks=False)
_TOKEN = re.compile(r'[A-Za-z_][A-Za-z0-9_]*')


def _is_topic_token(voice: str) -> bool:
    """Tell whether ``voice`` is one topic name token (no '/', no substitution, no '~')."""
    return _TOKEN.fullmatch(voice) is not None


def check_hri_msgs() -> None:
    """Raise ValueError when hri_msgs (the ``tracked`` and ``speech`` types) is missing."""
    if IdsList is None:
        raise ValueError('following ros4hri voices needs the hri_msgs package (IdsList, '
                         'LiveSpeech), which is not installed')


@dataclass
class VoiceInputStats:
    """What the voice input has received, followed and dropped (cumulative counters)."""

    tracked_lists: int = 0  # IdsList messages received
    voices_added: int = 0  # voices subscribed to; a voice that comes back counts again
    voices_removed: int = 0
    rejected_ids: int = 0  # ids refused (no valid topic name), counted once while listed
    speaking_messages: int = 0
    switches: int = 0  # the followed voice was taken over or lost (not a first follow)
    forwarded_messages: int = 0  # audio messages of the followed voice, given to on_audio
    dropped_messages: int = 0  # audio messages of voices not followed
    forwarded_speech: int = 0  # LiveSpeech messages of the followed voice, given to on_speech
    dropped_speech: int = 0  # LiveSpeech messages of voices not followed


class VoiceInput:
    """
    Follow the speaking ros4hri voice and forward its audio, for a node that owns this.

    With ``on_speech``, the followed voice's LiveSpeech messages are forwarded too; without it,
    no ``speech`` topic is subscribed.
    """

    def __init__(self, node: Node, *, on_audio: Callable[[AudioData], None],
                 on_switch: Callable[[Optional[str], Optional[str]], None],
                 audio_qos: QoSProfile,
                 on_speech: Optional[Callable[[LiveSpeech], None]] = None,
                 prefix: str = VOICES_NAMESPACE,
                 selection: VoiceSelectionConfig = VoiceSelectionConfig(),
                 callback_group: Optional[CallbackGroup] = None,
                 failures: Optional[CallbackFailures] = None,
                 tracked_qos: QoSProfile = TRACKED_QOS,
                 speaking_qos: QoSProfile = SPEAKING_QOS) -> None:
        check_hri_msgs()
        self._node = node
        self._on_audio = on_audio
        self._on_switch = on_switch
        self._on_speech = on_speech
        self._prefix = prefix.rstrip('/')
        self._options = {'callback_group': callback_group, 'event_callbacks': _NO_EVENTS}
        self._audio_qos, self._speaking_qos = audio_qos, speaking_qos
        self._failures = failures or CallbackFailures(node.get_logger())
        self._lock = threading.RLock()
        self._selector = VoiceSelector(selection)
        self._voices: Dict[str, Tuple[Subscription, ...]] = {}
        self._rejected: FrozenSet[str] = frozenset()
        self._stats = VoiceInputStats()
        self._closed = False
        self._tracked = node.create_subscription(
            IdsList, self._topic('tracked'),
            self._failures.guard('voices tracked', self._on_tracked), tracked_qos,
            **self._options)

    @property
    def followed(self) -> Optional[str]:
        """Return the id of the followed voice, or None."""
        with self._lock:
            return self._selector.followed

    @property
    def voices(self) -> FrozenSet[str]:
        """Return the ids of the voices subscribed to (the valid tracked ones)."""
        with self._lock:
            return frozenset(self._voices)

    @property
    def speaking(self) -> FrozenSet[str]:
        """Return the ids of the tracked voices that are speaking."""
        with self._lock:
            return self._selector.speaking

    def snapshot(self) -> VoiceInputStats:
        """Return a copy of the counters."""
        with self._lock:
            return replace(self._stats)

    def close(self) -> None:
        """Destroy every subscription; later callbacks do nothing. Calls no ``on_switch``."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            voices, self._voices = self._voices, {}
            for subscriptions in voices.values():
                self._destroy(subscriptions)
            self._node.destroy_subscription(self._tracked)

    def _now(self) -> float:
        return self._node.get_clock().now().nanoseconds * 1e-9

    def _topic(self, *parts: str) -> str:
        return '/'.join((self._prefix, *parts))

    def _on_tracked(self, msg: IdsList) -> None:
        with self._lock:
            if self._closed:
                return
            self._stats.tracked_lists += 1
            valid, rejected = self._split_ids(msg.ids)
            self._announce(self._selector.set_tracked(valid, self._now()))
            for voice in set(self._voices) - valid:
                self._destroy(self._voices.pop(voice))
                self._stats.voices_removed += 1
            for voice in sorted(valid - set(self._voices)):  # a failed one is retried next list
                self._voices[voice] = self._subscribe(voice)
                self._stats.voices_added += 1
            if rejected - self._rejected:
                self._stats.rejected_ids += len(rejected - self._rejected)
                self._node.get_logger().warning(
                    f'ignoring voice id(s) {", ".join(sorted(map(repr, rejected)))} on '
                    f'{self._topic("tracked")}: not valid in a ROS 2 topic name (a name token '
                    "holds only letters, digits and '_', and starts with no digit)")
            self._rejected = rejected

    def _split_ids(self, ids: Iterable[str]) -> Tuple[FrozenSet[str], FrozenSet[str]]:
        """Return the ids that make valid topic names, and the others."""
        valid, rejected = set(), set()
        for voice in ids:
            (valid if _is_topic_token(voice) and self._valid_topic(voice) else rejected).add(voice)
        return frozenset(valid), frozenset(rejected)

    def _valid_topic(self, voice: str) -> bool:
        try:
            validate_full_topic_name(expand_topic_name(
                self._topic(voice, 'audio'), self._node.get_name(), self._node.get_namespace()))
        except (InvalidTopicNameException, ValueError):
            return False
        return True

    def _subscribe(self, voice: str) -> Tuple[Subscription, ...]:
        """Subscribe to a voice's topics: audio, is_speaking and, with ``on_speech``, speech."""
        wanted = [('audio', AudioData, self._on_voice_audio, self._audio_qos),
                  ('is_speaking', Bool, self._on_is_speaking, self._speaking_qos)]
        if self._on_speech is not None:
            wanted.append(('speech', LiveSpeech, self._on_voice_speech, SPEECH_QOS))
        created = []
        try:
            for name, message_type, callback, qos in wanted:
                created.append(self._node.create_subscription(
                    message_type, self._topic(voice, name),
                    self._failures.guard(f'voice {name}', functools.partial(callback, voice)),
                    qos, **self._options))
        except Exception:  # noqa: B902 - the subscriptions made must not leak; re-raised
            for subscription in created:
                self._node.destroy_subscription(subscription)
            raise
        return tuple(created)

    def _destroy(self, subscriptions: Tuple[Subscription, ...]) -> None:
        for subscription in subscriptions:
            self._node.destroy_subscription(subscription)

    def _on_is_speaking(self, voice: str, msg: Bool) -> None:
        with self._lock:
            if self._closed:
                return
            self._stats.speaking_messages += 1
            self._announce(self._selector.set_speaking(voice, msg.data, self._now()))

    def _on_voice_audio(self, voice: str, msg: AudioData) -> None:
        self._forward(voice, msg, self._on_audio, 'messages')

    def _on_voice_speech(self, voice: str, msg: LiveSpeech) -> None:
        self._forward(voice, msg, self._on_speech, 'speech')

    def _forward(self, voice: str, msg: Any, deliver: Callable[[Any], None], kind: str) -> None:
        """
        Hand ``msg`` to ``deliver`` (under the lock) if ``voice`` is followed now, else drop it.

        The selector is brought up to date first (announcing a switch); the message counts as
        ``forwarded_<kind>`` or ``dropped_<kind>`` in the stats.
        """
        with self._lock:
            if self._closed:
                return
            self._announce(self._selector.update(self._now()))
            followed = voice == self._selector.followed
            name = f'{"forwarded" if followed else "dropped"}_{kind}'
            setattr(self._stats, name, getattr(self._stats, name) + 1)
            if followed:
                deliver(msg)

    def _announce(self, switch: Optional[VoiceSwitch]) -> None:
        """Count and log a change of the followed voice, and call ``on_switch``."""
        if switch is None:
            return
        if switch.old is not None:
            self._stats.switches += 1
        self._node.get_logger().info(
            f'following voice {switch.new!r} (was {switch.old!r}: {switch.reason})')
        self._on_switch(switch.old, switch.new)
