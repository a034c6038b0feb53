"""
The ros4hri voice input over real DDS, with real colcon-built hri_msgs and audio_common_msgs.

A plain rclpy node owns a VoiceInput under a MultiThreadedExecutor, and a probe node publishes
what a ros4hri voice pipeline (asr_vosk) publishes, with its QoS: ``/humans/voices/tracked``,
and per voice ``audio``, ``is_speaking`` and ``speech``. Each voice's audio payload is filled
with its own byte, and its LiveSpeech text is its id, so what is forwarded tells its voice.
"""

import threading

import pytest

rclpy = pytest.importorskip('rclpy')
AudioData = pytest.importorskip('audio_common_msgs.msg').AudioData
hri_msgs = pytest.importorskip('hri_msgs.msg')
IdsList, LiveSpeech = hri_msgs.IdsList, hri_msgs.LiveSpeech

from rclpy.callback_groups import ReentrantCallbackGroup  # noqa: E402
from rclpy.executors import MultiThreadedExecutor  # noqa: E402
from rclpy.qos import qos_profile_sensor_data, QoSProfile  # noqa: E402
from std_msgs.msg import Bool  # noqa: E402

import polling  # noqa: E402
from listener_head_ros.ros import voices  # noqa: E402
from listener_head_ros.ros.callbacks import CallbackFailures  # noqa: E402
from listener_head_ros.ros.voices import VoiceInput, VOICES_NAMESPACE  # noqa: E402
from listener_head_ros.voice_selection import VoiceSelectionConfig  # noqa: E402

SELECTION = VoiceSelectionConfig(hold_time=0.3, onset_time=0.1)
AUDIO_QOS = QoSProfile(depth=50, reliability=qos_profile_sensor_data.reliability,
                       durability=qos_profile_sensor_data.durability)
TAGS = {'alice': 1, 'bob': 2, 'solo': 3}


class Dialog:
    """The owner node with its VoiceInput, spinning in a thread, and the ros4hri probe."""

    def __init__(self, context, on_audio=None, speech=False):
        self.forwarded, self.switches, self.speech = [], [], []
        self.node = rclpy.create_node('voices_owner', context=context)
        self.failures = CallbackFailures(self.node.get_logger())
        self.input = VoiceInput(
            self.node, on_audio=on_audio or (lambda msg: self.forwarded.append(msg.data[0])),
            on_switch=lambda old, new: self.switches.append((old, new)), audio_qos=AUDIO_QOS,
            on_speech=(lambda msg: self.speech.append(msg.final)) if speech else None,
            selection=SELECTION, callback_group=ReentrantCallbackGroup(),
            failures=self.failures)
        self.probe = rclpy.create_node('voices_probe', context=context)
        self.tracked = self.probe.create_publisher(IdsList, f'{VOICES_NAMESPACE}/tracked', 1)
        self._audio, self._speaking, self._speech = {}, {}, {}
        self.executor = MultiThreadedExecutor(num_threads=4, context=context)
        self.executor.add_node(self.node)
        self._spinner = threading.Thread(target=self.executor.spin, daemon=True)
        self._spinner.start()

    def track(self, *ids):
        """Publish the tracked list until the input took it: it follows exactly the valid ids."""
        valid = {voice for voice in ids if voice in TAGS}
        lists = self.input.snapshot().tracked_lists
        assert polling.wait_for(lambda: self.input.voices == valid and (
            self.input.snapshot().tracked_lists > lists),
            lambda: self.tracked.publish(IdsList(ids=list(ids)))), (
            f'the input never tracked {sorted(valid)}: {sorted(self.input.voices)}')

    def speak(self, voice, speaking):
        """Publish a voice's is_speaking until the input has taken it."""
        publisher = self._publisher(self._speaking, Bool, voice, 'is_speaking')
        assert polling.wait_for(lambda: (voice in self.input.speaking) == speaking,
                                lambda: publisher.publish(Bool(data=speaking)))

    def stream(self, seconds, until=None):
        """
        Publish a chunk of each tracked voice's audio every poll (20 ms) for ``seconds``.

        With ``until``, stop as soon as it holds, and fail if it never does.
        """
        voices = sorted(self.input.voices)
        publishers = [(self._publisher(self._audio, AudioData, voice, 'audio'), TAGS[voice])
                      for voice in voices]
        for publisher, _ in publishers:  # discovery first: nothing published is lost to it
            assert polling.wait_for(lambda: publisher.get_subscription_count() > 0)

        def publish_all():
            for publisher, tag in publishers:
                publisher.publish(AudioData(data=[tag] * 64))
        done = polling.wait_for(until or (lambda: False), publish_all, timeout=seconds)
        assert done or until is None, 'the awaited condition never came while streaming'

    def say(self, voice):
        """Publish a LiveSpeech final result (the voice's id) until the input has counted it."""
        publisher = self._publisher(self._speech, LiveSpeech, voice, 'speech')
        assert polling.wait_for(lambda: publisher.get_subscription_count() > 0)
        stats = self.input.snapshot()
        before = stats.forwarded_speech + stats.dropped_speech
        publisher.publish(LiveSpeech(final=voice, confidence=0.9))
        assert polling.wait_for(lambda: self.input.snapshot().forwarded_speech
                                + self.input.snapshot().dropped_speech > before)

    def subscribers(self, voice, name):
        """Return how many subscriptions DDS reports on a voice's topic."""
        return self.probe.count_subscribers(f'{VOICES_NAMESPACE}/{voice}/{name}')

    def topics(self):
        """Return the topic names of the owner node's subscriptions."""
        return sorted(subscription.topic_name for subscription in self.node.subscriptions)

    def _publisher(self, cache, kind, voice, name):
        if voice not in cache:
            cache[voice] = self.probe.create_publisher(
                kind, f'{VOICES_NAMESPACE}/{voice}/{name}', 10)
        return cache[voice]

    def close(self):
        """Close the input while the executor spins, then stop everything."""
        self.input.close()
        self.executor.shutdown()
        self._spinner.join(timeout=10)
        self.probe.destroy_node()
        self.node.destroy_node()


@pytest.fixture
def dialog(rclpy_context):
    """Yield a running :class:`Dialog` and close it afterwards."""
    dialog = Dialog(rclpy_context)
    try:
        yield dialog
    finally:
        dialog.close()


def test_a_second_voice_takes_over_mid_dialog(dialog):
    """Alice speaks, then Bob takes over: her audio, then his; one switch; the rest dropped."""
    dialog.track('alice', 'bob')
    assert dialog.input.followed is None  # two silent voices: nobody to follow yet
    dialog.speak('alice', True)
    assert dialog.input.followed == 'alice'
    dialog.stream(0.4)
    assert dialog.forwarded and set(dialog.forwarded) == {TAGS['alice']}
    dialog.speak('alice', False)
    dialog.speak('bob', True)
    dialog.stream(10.0, until=lambda: dialog.input.followed == 'bob')
    dialog.stream(0.3)
    forwarded = dialog.forwarded
    switch_at = forwarded.index(TAGS['bob'])
    assert set(forwarded[:switch_at]) == {TAGS['alice']}
    assert set(forwarded[switch_at:]) == {TAGS['bob']}, 'audio of alice after the switch'
    assert dialog.switches == [(None, 'alice'), ('alice', 'bob')]
    stats = dialog.input.snapshot()
    assert stats.switches == 1 and stats.voices_added == 2 and stats.voices_removed == 0
    assert stats.forwarded_messages == len(forwarded)
    assert stats.dropped_messages > 0  # bob's while alice spoke, alice's after the switch
    assert dialog.failures.total() == 0


def test_subscriptions_follow_the_tracked_list(dialog):
    """Each tracked voice has its audio and is_speaking subscriptions, and only while tracked."""
    tracked = f'{VOICES_NAMESPACE}/tracked'
    dialog.track('alice')
    assert dialog.topics() == sorted([
        tracked, f'{VOICES_NAMESPACE}/alice/audio', f'{VOICES_NAMESPACE}/alice/is_speaking'])
    dialog.track('alice', 'bob')
    assert len(dialog.topics()) == 5
    dialog.track('bob')
    assert dialog.topics() == sorted([
        tracked, f'{VOICES_NAMESPACE}/bob/audio', f'{VOICES_NAMESPACE}/bob/is_speaking'])
    assert polling.wait_for(lambda: dialog.subscribers('alice', 'audio') == 0
                            and dialog.subscribers('alice', 'is_speaking') == 0)
    assert dialog.subscribers('bob', 'audio') == dialog.subscribers('bob', 'is_speaking') == 1
    dialog.track()
    assert dialog.topics() == [tracked]


def test_no_subscription_leaks_over_twenty_cycles(dialog):
    """Twenty times two voices come and go; then close leaves the node no subscription."""
    for _ in range(20):
        dialog.track('alice', 'bob')
        dialog.track()
    stats = dialog.input.snapshot()
    assert (stats.voices_added, stats.voices_removed) == (40, 40)
    assert len(dialog.topics()) == 1
    assert polling.wait_for(lambda: all(
        dialog.subscribers(voice, name) == 0
        for voice in ('alice', 'bob') for name in ('audio', 'is_speaking')))
    dialog.track('alice', 'bob')
    dialog.input.close()
    dialog.input.close()  # twice is harmless
    assert dialog.topics() == []
    assert polling.wait_for(
        lambda: dialog.probe.count_subscribers(f'{VOICES_NAMESPACE}/tracked') == 0)


def test_only_the_followed_voices_speech_is_forwarded(rclpy_context):
    """
    With on_speech, each voice's speech is subscribed; only the followed one's is forwarded.

    Alice is followed: her result is forwarded, Bob's is dropped and counted. Once Bob has
    the floor it is the other way round; the speech subscriptions go with their voice.
    """
    dialog = Dialog(rclpy_context, speech=True)
    try:
        dialog.track('alice', 'bob')
        assert len(dialog.topics()) == 7
        dialog.speak('alice', True)
        dialog.say('alice')
        dialog.say('bob')
        assert dialog.speech == ['alice']
        dialog.speak('alice', False)
        dialog.speak('bob', True)
        dialog.stream(10.0, until=lambda: dialog.input.followed == 'bob')
        dialog.say('alice')
        dialog.say('bob')
        assert dialog.speech == ['alice', 'bob']
        stats = dialog.input.snapshot()
        assert (stats.forwarded_speech, stats.dropped_speech) == (2, 2)
        dialog.track('bob')
        assert polling.wait_for(lambda: dialog.subscribers('alice', 'speech') == 0)
        assert dialog.subscribers('bob', 'speech') == 1
        assert dialog.failures.total() == 0
    finally:
        dialog.close()


def test_a_followed_voice_that_disappears_hands_over_at_once(dialog):
    """Bob talks over Alice; Alice's voice is lost: Bob is followed at once, without a hold."""
    dialog.track('alice', 'bob')
    dialog.speak('alice', True)
    dialog.speak('bob', True)
    assert dialog.input.followed == 'alice'  # overlap: she keeps the floor
    dialog.track('bob')
    assert dialog.input.followed == 'bob'
    assert dialog.switches == [(None, 'alice'), ('alice', 'bob')]
    dialog.stream(0.2)
    assert set(dialog.forwarded) == {TAGS['bob']}


def test_a_lone_voice_is_heard_without_is_speaking(dialog):
    """asr_vosk's single anonymous speaker: its audio is forwarded before any is_speaking."""
    dialog.track('solo')
    assert dialog.input.followed == 'solo'
    dialog.stream(10.0, until=lambda: len(dialog.forwarded) >= 5)
    assert set(dialog.forwarded) == {TAGS['solo']}


def test_ids_that_make_no_topic_name_are_refused_once(dialog):
    """REP-155 ids may start with a digit, which ROS 2 refuses in a name: counted, not fatal."""
    bad = ['23bd5', 'a-b', '', 'x/y', '{node}']
    dialog.track('alice', *bad)
    dialog.track('alice', *bad)  # re-published as asr_vosk does: no new refusal
    dialog.track('alice', *bad[:2])
    assert dialog.input.snapshot().rejected_ids == len(bad)
    dialog.track('alice', *bad)  # the three that left the list come back: refused again
    assert dialog.input.snapshot().rejected_ids == len(bad) + 3
    assert dialog.input.voices == {'alice'}
    assert dialog.failures.total() == 0


def test_a_failing_owner_callback_is_counted_not_fatal(rclpy_context):
    """An exception in on_audio is recorded by the failures counter; the executor keeps going."""
    def fail(msg):
        raise RuntimeError('owner failed')
    dialog = Dialog(rclpy_context, on_audio=fail)
    try:
        dialog.track('solo')
        dialog.stream(10.0, until=lambda: dialog.failures.counts().get('voice audio', 0) >= 3)
        dialog.track('solo', 'alice')  # the executor still serves the input
        assert dialog.input.snapshot().forwarded_messages >= 3
    finally:
        dialog.close()


def test_without_hri_msgs_the_input_says_so(rclpy_context, monkeypatch):
    """
    Where hri_msgs is not installed, building the input fails with the reason.

    hri_msgs is installed here (the test underlay), so its absence is simulated: the module's
    IdsList is set to None, as its guarded import leaves it.
    """
    monkeypatch.setattr(voices, 'IdsList', None)
    node = rclpy.create_node('voices_without_hri_msgs', context=rclpy_context)
    try:
        with pytest.raises(ValueError, match='hri_msgs'):
            VoiceInput(node, on_audio=print, on_switch=print, audio_qos=AUDIO_QOS)
        assert list(node.subscriptions) == []
    finally:
        node.destroy_node()
