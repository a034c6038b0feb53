"""
The rule that picks the followed voice among ros4hri voices (ROS-free), edge case by case.

The last test plays a dialog through the real engine and the embedded listener with the
recommended switch (reset the model, keep the pose shaper).
"""

import math
from pathlib import Path

from hypothesis import given, settings, strategies as st
import numpy as np
import pytest
import soundfile
import soxr

import listener_head_ros
from listener_head_ros.audio.ring_buffer import AudioRingBuffer
from listener_head_ros.engine import EngineConfig, ListenerEngine
from listener_head_ros.models.prosodic import ProsodicListener
from listener_head_ros.schema import setting_specs
from listener_head_ros.voice_selection import (
    VoiceSelectionConfig, VoiceSelector, VoiceSwitch)

# Binary fractions of a second throughout, so that no rounding decides a threshold.
CONFIG = VoiceSelectionConfig(hold_time=0.5, onset_time=0.25)


def selector(*voices, speech=()):
    """
    Return a selector with the test hysteresis tracking ``voices`` from 0 s, after ``speech``.

    ``speech`` holds ``(voice, is_speaking, time)`` events, applied in order.
    """
    chooser = VoiceSelector(CONFIG)
    chooser.set_tracked(voices, 0.0)
    for voice, speaking, now in speech:
        chooser.set_speaking(voice, speaking, now)
    return chooser


def test_a_lone_voice_is_followed_without_is_speaking():
    """One tracked voice is followed at once, speaking or not (sources without is_speaking)."""
    chooser = VoiceSelector(CONFIG)
    assert chooser.set_tracked(['a'], 1.0) == VoiceSwitch(None, 'a', 1.0, 'first')
    assert chooser.followed == 'a'
    assert chooser.update(100.0) is None and chooser.followed == 'a'


def test_with_two_silent_voices_nobody_is_followed_until_one_speaks():
    """Two silent voices: no guess; the first to speak is followed at once (no onset time)."""
    chooser = selector('a', 'b')
    assert chooser.followed is None
    assert chooser.set_speaking('b', True, 3.0) == VoiceSwitch(None, 'b', 3.0, 'first')


def test_a_second_voice_takes_over_after_hold_and_onset():
    """B takes over once A has been silent hold_time and B has spoken onset_time, not before."""
    chooser = selector('a', 'b', speech=[('a', True, 0.0), ('a', False, 2.0)])
    assert chooser.set_speaking('b', True, 2.375) is None  # A silent 0.375 s < hold
    assert chooser.update(2.5) is None  # A silent for hold_time, but B spoke 0.125 s < onset
    assert chooser.update(2.625) == VoiceSwitch('a', 'b', 2.625, 'take-over')
    assert chooser.followed == 'b'


def test_overlapping_voices_do_not_ping_pong():
    """While the followed voice speaks, overlap changes nothing; it hands over after it stops."""
    chooser = selector('a', 'b', speech=[('a', True, 0.0), ('b', True, 1.0)])
    for t in (1.5, 2.0, 3.0):
        assert chooser.update(t) is None
    chooser.set_speaking('a', False, 3.0)
    assert chooser.update(3.375) is None
    assert chooser.update(3.5) == VoiceSwitch('a', 'b', 3.5, 'take-over')
    chooser.set_speaking('a', True, 3.625)  # A comes back while B speaks: B keeps the floor
    for t in (3.7, 5.0, 9.0):
        assert chooser.update(t) is None
    assert chooser.followed == 'b'


def test_a_short_pause_of_the_followed_voice_keeps_the_floor():
    """A pause shorter than hold_time keeps A followed though B has spoken all along."""
    chooser = selector('a', 'b', speech=[('a', True, 0.0), ('b', True, 0.5), ('a', False, 1.0)])
    assert chooser.update(1.375) is None
    chooser.set_speaking('a', True, 1.4375)
    assert chooser.update(5.0) is None and chooser.followed == 'a'


def test_a_short_interjection_is_ignored():
    """A backchannel of B shorter than onset_time does not take A's floor, however long A waits."""
    chooser = selector('a', 'b', speech=[('a', True, 0.0), ('a', False, 1.0), ('b', True, 5.0)])
    assert chooser.update(5.125) is None
    chooser.set_speaking('b', False, 5.125)
    assert chooser.update(10.0) is None and chooser.followed == 'a'


def test_silence_keeps_the_followed_voice():
    """When nobody speaks, the followed voice stays followed: its silence is listened to."""
    chooser = selector('a', 'b', speech=[('a', True, 0.0), ('a', False, 1.0)])
    assert chooser.update(1000.0) is None and chooser.followed == 'a'


def test_repeated_is_speaking_does_not_restart_the_onset():
    """is_speaking is re-published: a repeat of true keeps the time the voice began."""
    chooser = selector('a', 'b', speech=[('a', True, 0.0), ('a', False, 0.0), ('b', True, 1.0)])
    assert chooser.set_speaking('b', True, 1.125) is None
    assert chooser.set_speaking('b', True, 1.25) == VoiceSwitch('a', 'b', 1.25, 'take-over')


def test_the_newest_speaker_takes_over_ties_by_id():
    """Of several voices ready to take over, the one that began last; equal starts: smallest id."""
    chooser = selector('a', 'b', 'c', 'd', speech=[
        ('a', True, 0.0), ('a', False, 0.0), ('b', True, 0.125), ('d', True, 0.25),
        ('c', True, 0.25)])
    assert chooser.update(1.0) == VoiceSwitch('a', 'c', 1.0, 'take-over')


def test_hold_counts_from_when_a_voice_became_followed():
    """A voice followed while already silent (the lone one left) holds the floor from then."""
    chooser = selector('a', 'b', speech=[('a', True, 0.0)])  # b silent since 0 s
    assert chooser.set_tracked(['b'], 5.0) == VoiceSwitch('a', 'b', 5.0, 'lost')
    chooser.set_tracked(['b', 'c'], 5.0)
    chooser.set_speaking('c', True, 5.0)
    assert chooser.update(5.25) is None  # c ready, b silent for 5 s but followed for 0.25 s
    assert chooser.update(5.5) == VoiceSwitch('b', 'c', 5.5, 'take-over')


def test_a_followed_voice_that_disappears_is_replaced_at_once():
    """Lost while followed: the speaking voice takes over now, with neither hold nor onset."""
    chooser = selector('a', 'b', speech=[('a', True, 0.0), ('b', True, 1.0)])
    assert chooser.set_tracked(['b'], 1.01) == VoiceSwitch('a', 'b', 1.01, 'lost')


def test_a_lost_voice_leaves_the_lone_one_or_nobody():
    """Lost with nobody speaking: the lone remaining voice, or none of two silent ones."""
    chooser = selector('a', 'b', speech=[('a', True, 0.0)])
    assert chooser.set_tracked(['b'], 1.0) == VoiceSwitch('a', 'b', 1.0, 'lost')
    chooser = selector('a', 'b', 'c', speech=[('a', True, 0.0)])
    assert chooser.set_tracked(['b', 'c'], 1.0) == VoiceSwitch('a', None, 1.0, 'lost')
    assert chooser.followed is None
    assert chooser.set_tracked([], 2.0) is None


def test_is_speaking_of_an_untracked_voice_is_ignored():
    """A late is_speaking of a voice no longer tracked changes nothing."""
    chooser = selector('a', 'b')
    assert chooser.set_speaking('z', True, 0.0) is None
    assert chooser.speaking == frozenset() and chooser.tracked == {'a', 'b'}


def test_a_voice_that_comes_back_starts_afresh():
    """A voice removed and re-tracked starts silent, whatever it was saying before."""
    chooser = selector('a', 'b', speech=[('b', True, 0.0)])
    chooser.set_tracked(['a'], 1.0)
    chooser.set_tracked(['a', 'b'], 2.0)
    assert chooser.speaking == frozenset()


def test_a_clock_jumping_back_restarts_the_durations():
    """A looping bag replay sends the clock back: hold and onset count again from the jump."""
    chooser = selector('a', 'b', speech=[('a', True, 0.0), ('a', False, 50.0), ('b', True, 60.0)])
    assert chooser.update(1.0) is None  # back to 1 s: b has spoken 0 s, a been silent 0 s
    assert chooser.update(1.25) is None  # b ready, a silent 0.25 s < hold
    assert chooser.update(1.5) == VoiceSwitch('a', 'b', 1.5, 'take-over')


@pytest.mark.parametrize('values', [{'hold_time': -0.1}, {'onset_time': math.nan},
                                    {'hold_time': math.inf}])
def test_config_refuses_negative_or_non_finite_times(values):
    """Hold and onset times are finite and not negative."""
    with pytest.raises(ValueError):
        VoiceSelectionConfig(**values)


def test_config_declares_its_settings():
    """Both thresholds are settings with a description and a range (the node's parameters)."""
    specs = {spec.name: spec for spec in setting_specs(VoiceSelectionConfig)}
    assert set(specs) == {'hold_time', 'onset_time'}
    assert all(spec.description and spec.range == (0.0, 30.0) for spec in specs.values())


VOICES = ('a', 'b', 'c')
SPEAKING = st.tuples(st.sampled_from(VOICES), st.booleans())
# Three voices, tracked from the start; mostly is_speaking and time passing, now and then a
# new tracked list: enough for take-overs to happen in many examples.
EVENTS = st.lists(st.tuples(
    st.floats(0.0, 0.4),
    st.one_of(SPEAKING, SPEAKING, SPEAKING, SPEAKING, SPEAKING, SPEAKING,
              st.tuples(st.just('tick'), st.none()),
              st.tuples(st.just('track'), st.sets(st.sampled_from(VOICES), min_size=1)))),
    min_size=30, max_size=60)


@settings(max_examples=150)
@given(EVENTS)
def test_switches_obey_the_rule(events):
    """Whatever happens: a tracked voice or none is followed, and take-overs are hold apart."""
    chooser, now, last_switch = selector(*VOICES), 0.0, -math.inf
    for step, (kind, value) in events:
        now += step
        followed, speaking = chooser.followed, chooser.speaking
        if kind == 'track':
            switch = chooser.set_tracked(value, now)
        elif kind == 'tick':
            switch = chooser.update(now)
        else:
            switch = chooser.set_speaking(kind, value, now)
        assert chooser.followed is None or chooser.followed in chooser.tracked
        if switch is None:
            assert chooser.followed == followed
            continue
        assert (switch.old, switch.new, switch.time) == (followed, chooser.followed, now)
        assert switch.old != switch.new
        if switch.reason == 'take-over':
            assert switch.old in chooser.tracked and switch.old not in speaking
            assert switch.new in chooser.speaking
            assert now - last_switch >= CONFIG.hold_time
        last_switch = now


def test_the_recommended_switch_keeps_the_head_within_its_limits():
    """
    Reset the model and keep the pose shaper at a switch: the head stays within its limits.

    Alice talks, Bob talks over her end and takes over. Every frame is finite, no step is
    faster than the speed limit, and the head then moves with Bob; a full engine reset at the
    switch (the shaper back at neutral) would have jumped the head.
    """
    speech, rate = soundfile.read(
        Path(listener_head_ros.__file__).parent / 'data' / 'speech_en.wav', dtype='float32')
    alice_end, bob_start = 11.2, 11.0  # s; bob's voice: another passage, pitched up 1.25x
    bob = soxr.resample(speech[12 * rate:24 * rate], rate, int(rate / 1.25)).astype(np.float32)
    streams = {voice: np.zeros(int(bob_start * rate) + bob.size, np.float32)
               for voice in ('alice', 'bob')}
    streams['alice'][:int(alice_end * rate)] = speech[:int(alice_end * rate)]
    streams['bob'][int(bob_start * rate):] = bob
    model = ProsodicListener()
    engine = ListenerEngine(model, AudioRingBuffer(2 * rate), EngineConfig())
    chooser = selector('alice', 'bob')
    hop, poses, switches = model.hop_length, [], []
    for tick in range(streams['bob'].size // hop):
        now = tick * hop / rate
        for switch in filter(None, (chooser.set_speaking('alice', now < alice_end, now),
                                    chooser.set_speaking('bob', now >= bob_start, now))):
            switches.append((tick, switch))
            model.reset()
        engine.buffer.write(streams[chooser.followed][tick * hop:(tick + 1) * hop])
        frame = engine.tick().frame
        poses.append((frame.roll, frame.pitch, frame.yaw))
    assert [(s.old, s.new, s.reason) for _, s in switches] == [
        (None, 'alice', 'first'), ('alice', 'bob', 'take-over')]
    switch_tick, switch = switches[1]
    hold_end = alice_end + CONFIG.hold_time  # events come once a hop: within two hops of it
    assert hold_end <= switch.time < hold_end + 2 * hop / rate
    poses = np.asarray(poses)
    step_limit = engine.config.limits.max_angular_velocity / engine.config.frame_rate
    assert np.isfinite(poses).all()
    assert np.abs(np.diff(poses, axis=0)).max() <= step_limit + 1e-9
    assert np.abs(poses[switch_tick - 1]).max() > step_limit  # a reset to neutral would jump
    assert np.ptp(poses[switch_tick:], axis=0).max() > step_limit  # the head moves with Bob
