"""
Live transcripts into the listener node over real DDS: hri_msgs/LiveSpeech and std_msgs/String.

Audio (F32LE, so the node hears exactly the samples the offline run steps on) and recognition
results are published from a probe node in lockstep with the engine: the first part of the
audio, then a result once it is stepped, then the rest. The result is then due at a known hop,
and the held pose after the audio (neutral_return_timeout keeps the head there) is the model's
last frame, computed offline on the same audio and events: the comparison is exact, not
statistical. The models are tiny causal GRU-MDN checkpoints with random weights and a fixed
seed, one that reads text (InputConfig(text='lexical')) and one that reads only audio.
"""

from dataclasses import replace
from pathlib import Path
from typing import Optional

import numpy as np
import pytest

rclpy = pytest.importorskip('rclpy')
hri_msgs = pytest.importorskip('hri_msgs.msg')
torch = pytest.importorskip('torch')

from rclpy.event_handler import PublisherEventCallbacks  # noqa: E402
from rclpy.lifecycle import TransitionCallbackReturn  # noqa: E402
from rclpy.time import Time  # noqa: E402
from std_msgs.msg import Bool, String  # noqa: E402

from listener_head_ros.audio.pcm import encode_pcm  # noqa: E402
from listener_head_ros.models.base import TRANSCRIPT, TranscriptEvent  # noqa: E402
from listener_head_ros.models.checkpoint import load_listener_model  # noqa: E402
from listener_head_ros.models.frame_features import FeatureConfig  # noqa: E402
from listener_head_ros.models.frame_inputs import InputConfig  # noqa: E402
from listener_head_ros.models.learned import save_learned_checkpoint  # noqa: E402
from listener_head_ros.models.registry import build_network  # noqa: E402
from test_listener_node import LIMITS, listener, RATE, speech, wait_for  # noqa: E402

LiveSpeech = hri_msgs.LiveSpeech
# Publishers created while the executor spins: no QoS event waitables (ros2/rclpy#1284).
NO_EVENTS = PublisherEventCallbacks(use_default_callbacks=False)
HOPS_BEFORE, HOPS = 20, 45  # the result arrives after 20 hops of 45 have been stepped
TEXT, OTHER_TEXT = 'yes I see what you mean', 'no'
# F32LE carries the float samples unchanged; the head holds the last frame's pose.
NODE = {'input.sample_format': 'F32LE', 'neutral_return_timeout': 60.0, 'device': 'cpu'}


def _checkpoint(directory: Path, text: str) -> Path:
    """Save a tiny causal GRU-MDN with seeded random weights that reads ``text`` features."""
    torch.manual_seed(0)
    inputs = InputConfig(text=text)
    network = build_network('causal_gru_mdn', {'input_dim': inputs.dim(FeatureConfig()),
                                               'hidden_size': 16, 'conv_channels': 8,
                                               'num_layers': 1})
    return save_learned_checkpoint(directory, network, inputs=inputs)


@pytest.fixture(scope='module')
def checkpoints(tmp_path_factory) -> dict:
    """Return the text-reading and the audio-only checkpoint directories."""
    root = tmp_path_factory.mktemp('transcript_models')
    return {'text': _checkpoint(root / 'text', 'lexical'),
            'audio': _checkpoint(root / 'audio', '')}


def _audio(hop: int) -> np.ndarray:
    return np.ascontiguousarray(speech(HOPS * hop / RATE + 0.01)[:HOPS * hop], dtype=np.float32)


def offline_pose(checkpoint: Path, text: Optional[str], final: bool = True) -> np.ndarray:
    """
    Return the held pose after the model steps offline on the test audio and the result.

    The result arrives stamped with the end of the first part, after the step that ends there
    has run, so it reaches the next step's context, with that stamp (text features fade with
    the time since it). The model is stepped hop by hop, as in the node: its batched run
    agrees only to float tolerance.
    """
    model = load_listener_model(str(checkpoint))
    hop = model.hop_length
    audio, contexts = _audio(hop), model.contexts(HOPS, None)
    if text is not None:
        event = TranscriptEvent(HOPS_BEFORE * hop / RATE, text, final=final)
        contexts[HOPS_BEFORE] = replace(contexts[HOPS_BEFORE], transcripts=(event,))
    model.reset()
    for index, context in enumerate(contexts):
        frame = model.step(audio[index * hop:(index + 1) * hop], context)
    return np.clip(np.array(frame.pose), LIMITS.lower, LIMITS.upper)


def _publish_hops(harness, audio: np.ndarray, hop: int, first: int, last: int) -> None:
    """Publish hops ``first..last-1`` at about real time; wait until the engine stepped them."""
    engine = harness.node.engine
    for index in range(first, last):
        harness.recorder.publish_audio(encode_pcm(audio[index * hop:(index + 1) * hop], 'F32LE'))
        wait_for(lambda stepped=index - 1: engine.frames_stepped >= stepped, timeout=1.0)
    assert wait_for(lambda: engine.frames_stepped == last and engine.buffer.available == 0), (
        engine.frames_stepped, engine.buffer.available)


def node_pose(harness, publish_result) -> np.ndarray:
    """
    Run one activation's audio and result; return the pose the head settles at.

    The first part of the audio, then ``publish_result()`` once it is stepped, then the rest.
    The node is active on entry and exit.
    """
    node, recorder = harness.node, harness.recorder
    engine = node.engine
    hop = engine.model.hop_length
    audio = _audio(hop)
    _publish_hops(harness, audio, hop, 0, HOPS_BEFORE)
    if publish_result is not None:
        publish_result()
        assert wait_for(lambda: engine.transcripts_received == 1)
    _publish_hops(harness, audio, hop, HOPS_BEFORE, HOPS)
    assert engine.frames_dropped == 0
    # Poses stamped after this were shaped after the last step; earlier ones may still be in
    # flight, and the plateau held while the result was awaited is three equal poses too.
    stepped = node.get_clock().now().nanoseconds
    settled = []

    def held() -> bool:
        poses = [(t, m) for t, m in list(recorder.poses)
                 if Time.from_msg(m.header.stamp).nanoseconds > stepped][-3:]
        settled[:] = [np.array([m.roll, m.pitch, m.yaw]) for _, m in poses]
        return len(settled) == 3 and np.array_equal(settled[0], settled[-1])

    assert wait_for(held), settled
    return settled[-1]


def restart(harness) -> None:
    """Deactivate and activate the node: the engine and model start afresh."""
    node, recorder = harness.node, harness.recorder
    assert node.trigger_deactivate() == TransitionCallbackReturn.SUCCESS
    assert wait_for(lambda: recorder.audio.get_subscription_count() == 0)
    assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
    assert wait_for(lambda: recorder.audio.get_subscription_count() > 0)


def _live_speech(publisher, final: str = '', incremental: str = '',
                 confidence: float = 0.9):
    return lambda: publisher.publish(LiveSpeech(final=final, incremental=incremental,
                                                confidence=confidence, locale='en_GB'))


def test_live_speech_changes_what_a_text_model_does(rclpy_context, checkpoints):
    """
    A LiveSpeech final result changes a text-reading model's pose exactly as offline.

    A different text changes it differently; an incremental result reaches the model as a
    partial one; an empty one is ignored and counted. /diagnostics counts what was received
    and delivered.
    """
    text_model = checkpoints['text']
    expected = {text: offline_pose(text_model, text) for text in (None, TEXT, OTHER_TEXT)}
    assert np.abs(expected[TEXT] - expected[None]).max() > 1e-3, expected
    assert np.abs(expected[TEXT] - expected[OTHER_TEXT]).max() > 1e-3, expected
    with listener(rclpy_context, model=str(text_model), **{'topics.speech': 'speech'},
                  **NODE) as harness:
        node, recorder = harness.node, harness.recorder
        assert TRANSCRIPT in node.engine.model.inputs
        publisher = recorder.node.create_publisher(
            LiveSpeech, 'speech', 10, event_callbacks=NO_EVENTS)
        assert wait_for(lambda: publisher.get_subscription_count() > 0)
        np.testing.assert_allclose(node_pose(harness, None), expected[None], atol=1e-6)
        for text in (TEXT, OTHER_TEXT):
            restart(harness)
            pose = node_pose(harness, _live_speech(publisher, final=text, incremental='stale'))
            np.testing.assert_allclose(pose, expected[text], atol=1e-6)
        assert wait_for(lambda: recorder.count('transcripts delivered') == 1)
        assert recorder.count('transcripts received') == 1
        restart(harness)
        partial = offline_pose(text_model, TEXT, final=False)
        pose = node_pose(harness, _live_speech(publisher, incremental=TEXT))
        np.testing.assert_allclose(pose, partial, atol=1e-6)
        _live_speech(publisher, final=' ', incremental='')()
        assert wait_for(lambda: recorder.count('transcripts ignored (no text)') == 1)
        assert node.engine.transcripts_delivered == 1
        assert recorder.count('transcripts dropped (queue full)') == 0
        assert recorder.last('model inputs') == 'audio, transcript'


def test_an_audio_only_model_is_unaffected_by_transcripts(rclpy_context, checkpoints):
    """The same audio gives the same held pose with and without a LiveSpeech result."""
    audio_model = checkpoints['audio']
    expected = offline_pose(audio_model, None)
    np.testing.assert_array_equal(offline_pose(audio_model, TEXT), expected)
    with listener(rclpy_context, model=str(audio_model), **{'topics.speech': 'speech'},
                  **NODE) as harness:
        publisher = harness.recorder.node.create_publisher(
            LiveSpeech, 'speech', 10, event_callbacks=NO_EVENTS)
        assert wait_for(lambda: publisher.get_subscription_count() > 0)
        without = node_pose(harness, None)
        restart(harness)
        with_text = node_pose(harness, _live_speech(publisher, final=TEXT))
        assert harness.node.engine.transcripts_delivered == 1
    np.testing.assert_allclose(without, expected, atol=1e-6)
    np.testing.assert_array_equal(with_text, without)


def test_a_std_msgs_string_is_a_final_result(rclpy_context, checkpoints):
    """topics.transcript takes std_msgs/String, each message a final result."""
    text_model = checkpoints['text']
    with listener(rclpy_context, model=str(text_model), **{'topics.transcript': 'asr_text'},
                  **NODE) as harness:
        publisher = harness.recorder.node.create_publisher(
            String, 'asr_text', 10, event_callbacks=NO_EVENTS)
        assert wait_for(lambda: publisher.get_subscription_count() > 0)
        pose = node_pose(harness, lambda: publisher.publish(String(data=TEXT)))
        assert harness.node.engine.transcripts_delivered == 1
    np.testing.assert_allclose(pose, offline_pose(text_model, TEXT), atol=1e-6)


def test_the_followed_voices_speech_reaches_a_text_model(rclpy_context, checkpoints):
    """
    With topics.voices and a text model, the followed voice's own speech topic is heard.

    Two voices are tracked and Alice speaks: her LiveSpeech reaches the engine, Bob's does not
    and is counted on /diagnostics.
    """
    voices = '/humans/voices'
    with listener(rclpy_context, start=False, model=str(checkpoints['text']),
                  **{'topics.voices': voices}, **NODE) as harness:
        node, probe = harness.node, harness.recorder.node
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
        assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
        tracked = probe.create_publisher(hri_msgs.IdsList, f'{voices}/tracked', 1,
                                         event_callbacks=NO_EVENTS)
        assert wait_for(lambda: node.count_subscribers(f'{voices}/bob/speech') == 1,
                        publish=lambda: tracked.publish(hri_msgs.IdsList(ids=['alice', 'bob'])))
        speech = {voice: probe.create_publisher(LiveSpeech, f'{voices}/{voice}/speech', 10,
                                                event_callbacks=NO_EVENTS)
                  for voice in ('alice', 'bob')}
        speaking = probe.create_publisher(Bool, f'{voices}/alice/is_speaking', 10,
                                          event_callbacks=NO_EVENTS)
        for publisher in (speaking, *speech.values()):
            assert wait_for(lambda: publisher.get_subscription_count() > 0)
        assert wait_for(lambda: harness.recorder.last('followed voice') == 'alice',
                        publish=lambda: speaking.publish(Bool(data=True)))
        _live_speech(speech['alice'], final=TEXT)()
        assert wait_for(lambda: node.engine.transcripts_received == 1)
        _live_speech(speech['bob'], final=OTHER_TEXT)()
        assert wait_for(
            lambda: harness.recorder.count('voice speech dropped (not followed)') == 1)
        assert node.engine.transcripts_received == 1
        assert harness.recorder.count('voice speech forwarded') == 1


def test_an_explicit_speech_topic_wins_over_the_voices_speech(rclpy_context, checkpoints):
    """With topics.voices and topics.speech set, no voice's own speech topic is subscribed."""
    voices = '/humans/voices'
    with listener(rclpy_context, start=False, model=str(checkpoints['text']),
                  **{'topics.voices': voices, 'topics.speech': 'speech'}, **NODE) as harness:
        node, recorder = harness.node, harness.recorder
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
        assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
        tracked = recorder.node.create_publisher(hri_msgs.IdsList, f'{voices}/tracked', 1,
                                                 event_callbacks=NO_EVENTS)
        assert wait_for(lambda: node.count_subscribers(f'{voices}/alice/audio') == 1,
                        publish=lambda: tracked.publish(hri_msgs.IdsList(ids=['alice'])))
        assert node.count_subscribers(f'{voices}/alice/speech') == 0
        assert node.count_subscribers('speech') == 1


def test_a_text_model_without_a_transcript_topic_fails_configure(
        rclpy_context, checkpoints, capfd):
    """With neither topics.speech nor topics.transcript, a text model is refused at configure."""
    with listener(rclpy_context, start=False, model=str(checkpoints['text'])) as harness:
        assert harness.node.trigger_configure() == TransitionCallbackReturn.FAILURE
        assert harness.state() == 'unconfigured' and harness.node.listener is None
    err = capfd.readouterr().err
    assert 'configure failed' in err and TRANSCRIPT in err, err


def test_speech_without_hri_msgs_fails_configure_naming_the_package(rclpy_context, capfd,
                                                                    monkeypatch):
    """Where hri_msgs is absent, topics.speech set is a configure error that says so."""
    import listener_head_ros.ros.listener_node as listener_node
    monkeypatch.setattr(listener_node, 'LiveSpeech', None)
    with listener(rclpy_context, start=False, **{'topics.speech': 'speech'}) as harness:
        assert harness.node.trigger_configure() == TransitionCallbackReturn.FAILURE
    err = capfd.readouterr().err
    assert 'topics.speech' in err and 'hri_msgs' in err and 'topics.transcript' in err, err
