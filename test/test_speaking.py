"""The embedded speaking motion, and the engine's hand-over between listening and speaking."""

from pathlib import Path

import listener_head_ros
import numpy as np
import pytest
import soundfile

from listener_head_ros.audio.ring_buffer import AudioRingBuffer
from listener_head_ros.engine import EngineConfig, ListenerEngine
from listener_head_ros.face import BLENDSHAPE_INDEX
from listener_head_ros.models.prosodic import ProsodicListener
from listener_head_ros.models.speaking import ProsodicSpeaker, ProsodicSpeakerConfig

RATE = 16000
SPEECH = Path(listener_head_ros.__file__).parent / 'data' / 'speech_en.wav'


@pytest.fixture(scope='module')
def speech() -> np.ndarray:
    """Return the bundled speech recording as mono float32 at 16 kHz."""
    samples, rate = soundfile.read(SPEECH, dtype='float32')
    assert rate == RATE
    return samples if samples.ndim == 1 else samples.mean(axis=1)


def test_streaming_equals_batch(speech):
    """Stepping hop by hop gives the frames of the batched run."""
    model = ProsodicSpeaker()
    audio = speech[:8 * RATE]
    batch = model.run(audio)
    model.reset()
    hop = model.hop_length
    for index, expected in enumerate(batch):
        frame = model.step(audio[index * hop:(index + 1) * hop])
        assert np.allclose(frame.pose, expected.pose, atol=1e-6), index
        assert np.allclose(frame.blendshapes, expected.blendshapes, atol=1e-6), index


def test_the_head_moves_with_own_speech_and_rests_in_silence(speech):
    """Speech gives beat nods, pitch following and phrase turns; silence brings it back."""
    model = ProsodicSpeaker()
    frames = model.run(np.concatenate([speech[:10 * RATE], np.zeros(3 * RATE, np.float32)]))
    poses = np.array([f.pose for f in frames])
    speaking = poses[:int(10 * model.frame_rate)]
    assert np.std(speaking[:, 1]) > 0.005 and np.std(speaking[:, 2]) > 0.005
    assert np.max(np.abs(poses)) < 0.4
    assert np.max(np.abs(poses[-15:])) < 0.01, 'no rest after the speech'
    jaw = np.array([f.blendshapes[BLENDSHAPE_INDEX['jawOpen']] for f in frames])
    assert jaw[:int(10 * model.frame_rate)].max() > 0.1 and jaw[-15:].max() == 0.0
    still = ProsodicSpeaker(ProsodicSpeakerConfig(beat_amplitude=0.0, pitch_gain=0.0,
                                                  phrase_yaw=0.0)).run(speech[:4 * RATE])
    assert np.max(np.abs([f.pose for f in still])) < 1e-9


def _engine(handover_time: float = 0.4) -> ListenerEngine:
    listener, speaker = ProsodicListener(), ProsodicSpeaker()
    return ListenerEngine(listener, AudioRingBuffer(2 * RATE),
                          EngineConfig(handover_time=handover_time),
                          speaker=speaker, robot_buffer=AudioRingBuffer(2 * RATE))


def test_hand_over_from_listening_to_speaking_and_back(speech):
    """The robot answers: the head cross-fades to the speaking motion and back, within limits."""
    engine = _engine()
    hop, limits = engine.model.hop_length, engine.config.limits
    outputs = []

    def run(seconds: float, source: AudioRingBuffer, audio: np.ndarray) -> None:
        for index in range(int(seconds * engine.config.frame_rate)):
            source.write(audio[index * hop:(index + 1) * hop])
            outputs.append(engine.tick())
    run(4.0, engine.buffer, speech)
    engine.set_robot_speaking(True)
    run(4.0, engine.robot_buffer, speech[5 * RATE:])
    engine.set_robot_speaking(False)
    run(3.0, engine.buffer, speech[10 * RATE:])
    states = [o.state for o in outputs]
    assert states[100] == 'listening' and set(states[125:235]) == {'speaking'}
    assert states[-1] == 'listening'
    weights_ramp = int(0.4 * engine.config.frame_rate)
    assert not any(o.frame.backchannels for o in outputs[120:240])
    speaking_pitch = np.array([o.frame.pitch for o in outputs[120 + weights_ramp:240]])
    assert np.std(speaking_pitch) > 0.003, 'the head should move while the robot speaks'
    for output in outputs:
        velocity = np.asarray(output.angular_velocity)
        assert np.all(np.isfinite(velocity)) and np.all(
            np.abs(velocity) <= limits.max_angular_velocity + 1e-9)
        pose = np.array(output.frame.pose)
        assert np.all(pose >= limits.lower - 1e-12) and np.all(pose <= limits.upper + 1e-12)
    assert engine.speaking_frames_stepped == 120 and engine.speaking_weight == 0.0


def test_the_weight_ramps_over_the_hand_over_time(speech):
    """The speaking weight rises linearly over handover_time, and the robot audio alone counts."""
    engine = _engine(handover_time=0.5)
    hop = engine.speaker.hop_length
    weights = []
    for index in range(30):
        engine.robot_buffer.write(speech[index * hop:(index + 1) * hop])
        engine.tick()
        weights.append(engine.speaking_weight)
    ramp = int(round(0.5 * engine.config.frame_rate))
    assert np.allclose(np.diff(weights[:ramp]), 1.0 / ramp, atol=1e-3)
    assert weights[ramp] == 1.0 and not engine.robot_speaking
    for _ in range(ramp + int(0.5 * engine.config.frame_rate) + 2):  # audio stops
        engine.tick()
    assert engine.speaking_weight == 0.0
