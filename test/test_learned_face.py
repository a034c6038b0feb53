"""
Tests of the learned face on the robot: its head, its face, one reaction followed per turn.

The FaceVerse rotation to head map, the face of a facial model trained on the small
synthetic REACT corpus (the session's ``react_face`` fixture, :mod:`react_fixture`: a tiny
``causal_gru_flow`` trained in a few seconds), and the robot following one sampled reaction
(per speaker turn) through the engine.
"""

import math

import numpy as np
import pytest
import torch

from listener_head_ros.audio.ring_buffer import AudioRingBuffer
from listener_head_ros.data.react2025 import load_audio
from listener_head_ros.engine import EngineConfig, ListenerEngine
from listener_head_ros.face import (
    ACTION_UNIT_INDEX, BLENDSHAPE_INDEX, faceverse_blendshapes, react_attributes_to_face)
from listener_head_ros.features import FeatureConfig
from listener_head_ros.models.checkpoint import load_checkpoint
from listener_head_ros.models.learned import TorchListenerModel
from listener_head_ros.streams import (
    COEFFICIENTS, EXPRESSION_COLUMNS, FACEVERSE_FRONTAL_ROTATION, faceverse_rotation_to_head,
    FACIAL_ATTRIBUTES, HEAD, PREDICTED, ROTATION_COLUMNS)
from react_fixture import smile_masks

RATE = 16000
SMILE = ('mouthSmileLeft', 'mouthSmileRight')


def speech_signal(seconds: float = 3.0, seed: int = 0) -> np.ndarray:
    """Return speech-like audio: voiced gliding tones in 0.6 s phrases with 0.3 s pauses."""
    t = np.arange(int(seconds * RATE)) / RATE
    f0 = 130.0 + 30.0 * np.sin(2 * np.pi * 0.7 * t)
    voiced = (t % 0.9) < 0.6
    tone = 0.3 * np.sin(2 * np.pi * np.cumsum(f0) / RATE) * voiced
    noise = 0.01 * np.random.default_rng(seed).standard_normal(t.size)
    return (tone + noise).astype(np.float32)


def load(react_face, num_samples: int = 1) -> TorchListenerModel:
    """Load the trained model: its point prediction, or ``num_samples`` smooth reactions."""
    model = load_checkpoint(react_face.checkpoint, FeatureConfig().frame_rate, 'cpu')
    if num_samples == 1:
        return model
    return model.with_inference(mode='sample', num_samples=num_samples, noise_correlation=0.9)


def _untrained(model: TorchListenerModel) -> TorchListenerModel:
    """Return ``model`` with freshly initialised weights, its input and target scaling kept."""
    torch.manual_seed(1)
    network = type(model.network)(model.network.config)
    kept = {k: v for k, v in model.network.state_dict().items()
            if k.split('.')[0] in ('norm', 'target_norm')}
    network.load_state_dict({**network.state_dict(), **kept})
    return TorchListenerModel(network, model.feature_config, model.inference,
                              targets=model.targets)


def _smiles(model: TorchListenerModel, react_face, dyad) -> tuple:
    """Return the AU12 and smile blendshapes on the smile plateaus and away, and the frames."""
    frames = model.run(load_audio(dyad.path('audio', 'speaker'), model.sample_rate))
    times = (np.arange(len(frames)) + 1) / model.feature_config.frame_rate
    plateau, away = smile_masks(times, react_face.utterance_ends(dyad))
    au12 = np.array([f.action_units[ACTION_UNIT_INDEX['AU12']] for f in frames])
    smile = np.array([[f.blendshapes[BLENDSHAPE_INDEX[n]] for n in SMILE] for f in frames])
    return (au12[plateau].mean(), au12[away].mean(), smile[plateau].mean(),
            smile[away].mean(), frames)


def test_rotation_to_head_axes_signs_and_neutral():
    """Each FaceVerse axis moves one REP-103 angle with the documented sign, from the neutral."""
    frontal = np.asarray(FACEVERSE_FRONTAL_ROTATION)
    assert np.allclose(faceverse_rotation_to_head(frontal), 0.0, atol=1e-7)
    assert np.allclose(faceverse_rotation_to_head(frontal * -1.0), 0.0, atol=1e-6)  # -pi = pi
    for axis, (index, name) in enumerate([(1, 'pitch'), (2, 'yaw'), (0, 'roll')]):
        rotation = frontal.copy()
        rotation[axis] += 0.2
        head = faceverse_rotation_to_head(rotation)
        expected = np.zeros(3)
        expected[index] = 0.2
        assert np.allclose(head, expected, atol=1e-6), name
    combined = frontal + [0.12, -0.08, 0.04]
    assert np.allclose(faceverse_rotation_to_head(combined), [0.04, 0.12, -0.08], atol=5e-3)
    # Relative to another neutral: the same offsets give the same head.
    assert np.allclose(faceverse_rotation_to_head([0.12, -0.08, 0.04], (0.0, 0.0, 0.0)),
                       faceverse_rotation_to_head(combined), atol=1e-6)
    with pytest.raises(ValueError):
        faceverse_rotation_to_head([0.0, math.nan, 0.0])
    with pytest.raises(ValueError):
        faceverse_rotation_to_head([0.0, 0.0])


def test_training_on_the_synthetic_corpus_beats_the_neutral_face(react_face):
    """The trainer's held-out figures: both facial streams closer to the truth than neutral."""
    figures = react_face.results['folds']['test']['figures']
    for stream in (FACIAL_ATTRIBUTES.name, COEFFICIENTS.name):
        assert figures['model'][stream]['protocol'] < 0.6 * figures['neutral'][stream][
            'protocol'], (stream, figures)


def test_the_trained_face_smiles_after_the_speakers_utterances_end(react_face):
    """
    On held-out dyads AU12 and the smile blendshapes rise after each utterance end, as planted.

    The planted listener smiles after an utterance end only sometimes (a coin flip), so the point
    prediction sits between rest and a full smile there; an untrained network of the same
    shape and scaling shows no such rise.
    """
    model = load(react_face)
    untrained = _untrained(model)
    for dyad in react_face.release().dyads('test'):
        au12, au12_away, smile, smile_away, frames = _smiles(model, react_face, dyad)
        assert au12 > au12_away + 0.15 and au12 > 0.35, (dyad.key, au12, au12_away)
        assert smile > smile_away + 0.05, (dyad.key, smile, smile_away)
        assert {f.expression for f in frames} >= {'happy', 'neutral'}
        fresh, fresh_away, *_ = _smiles(untrained, react_face, dyad)
        assert abs(fresh - fresh_away) < 0.05, (dyad.key, fresh, fresh_away)


def test_the_head_and_blendshapes_come_from_the_predicted_coefficients(react_face):
    """The head is the frame's rotation relative to the training listeners' neutral head."""
    model = load(react_face)
    assert model.outputs[HEAD.name] == PREDICTED and model.outputs['blendshapes'] == PREDICTED
    neutral = model.inference.neutral_rotation  # recorded by training: the synthetic rest
    assert np.allclose(faceverse_rotation_to_head(neutral), 0.0, atol=0.02), neutral
    assert not np.allclose(neutral, FACEVERSE_FRONTAL_ROTATION, atol=1e-6)
    frames = model.run(load_audio(react_face.release().dyads('test')[0].path(
        'audio', 'speaker'), model.sample_rate))
    for frame in frames:
        rotation = frame.coefficients[ROTATION_COLUMNS]
        assert np.allclose(frame.pose, faceverse_rotation_to_head(rotation, neutral), atol=1e-6)
        assert np.array_equal(frame.blendshapes,
                              faceverse_blendshapes(frame.coefficients[EXPRESSION_COLUMNS]))
        assert np.isfinite(frame.pose).all() and np.abs(frame.pose).max() < 0.2
        assert 0.0 <= frame.blendshapes.min() and frame.blendshapes.max() <= 1.0


def _engine(model, **settings) -> ListenerEngine:
    buffer = AudioRingBuffer(4 * model.sample_rate)
    return ListenerEngine(model, buffer, EngineConfig(max_latency=2.0, **settings))


def _ticks(engine: ListenerEngine, audio: np.ndarray) -> list:
    """Feed one hop per tick; return the (tick output, followed reaction) of each."""
    hop, out = engine.model.hop_length, []
    for start in range(0, audio.size - hop + 1, hop):
        engine.buffer.write(audio[start:start + hop])
        out.append((engine.tick(), engine.reaction))
    return out


def _follows(output, index: int) -> bool:
    """Tell whether a tick's face is exactly sample ``index``'s face."""
    frame = output.frame
    attributes = frame.samples[FACIAL_ATTRIBUTES.name][index]
    coefficients = frame.samples[COEFFICIENTS.name][index]
    units, valence, arousal, expression = react_attributes_to_face(attributes)
    return (np.array_equal(frame.action_units, units) and frame.valence == valence
            and frame.arousal == arousal and frame.expression == expression
            and np.array_equal(frame.blendshapes,
                               faceverse_blendshapes(coefficients[EXPRESSION_COLUMNS])))


def test_the_robot_follows_one_sample_throughout_without_redraws(react_face):
    """With reaction_redraw 'never' every published face is sample 0's, never another's."""
    engine = _engine(load(react_face, 4))
    ticks = _ticks(engine, speech_signal(2.0, seed=2))
    assert ticks and {reaction for _, reaction in ticks} == {0}
    assert all(_follows(output, 0) for output, _ in ticks)
    assert not all(_follows(output, 1) for output, _ in ticks)  # the samples do differ
    assert engine.nonfinite_frames == 0


def _turns(seconds=(1.2, 1.5, 1.2, 1.5, 1.2)) -> np.ndarray:
    """Return speech, silence, speech, ... of the given durations: three turns."""
    parts = [speech_signal(d, seed=i) if i % 2 == 0 else np.zeros(int(d * RATE), np.float32)
             for i, d in enumerate(seconds)]
    return np.concatenate(parts)


def test_turn_redraws_switch_only_at_turn_onsets_and_repeat_by_seed(react_face):
    """'turn': a new sample at each onset after a pause, constant within a turn, seeded."""
    audio = _turns()
    runs = {}
    for seed in (0, 0, 5):
        engine = _engine(load(react_face, 4), reaction_redraw='turn', turn_pause=1.0,
                         reaction_seed=seed)
        ticks = _ticks(engine, audio)
        assert all(_follows(output, reaction) for output, reaction in ticks)
        reactions = [reaction for _, reaction in ticks]
        changes = [i for i in range(1, len(reactions)) if reactions[i] != reactions[i - 1]]
        hop_seconds = engine.model.hop_length / RATE
        onsets = [2.7, 5.4]  # the starts of the second and third turns, s
        assert len(changes) == len(onsets) and engine.reactions.turns == 3
        for change, onset in zip(changes, onsets):
            assert abs(change * hop_seconds - onset) < 0.1
        runs.setdefault(seed, []).append(reactions)
    assert runs[0][0] == runs[0][1]  # the same seed draws the same reactions
    assert runs[0][0] != runs[5][0]


def test_a_short_pause_keeps_the_turn_and_one_sample_never_redraws(react_face):
    """Pauses shorter than turn_pause stay in the turn; a deterministic model stays at 0."""
    engine = _engine(load(react_face, 4), reaction_redraw='turn', turn_pause=1.0)
    reactions = [r for _, r in _ticks(engine, _turns((1.2, 0.5, 1.2)))]
    assert len(set(reactions)) == 1 and engine.reactions.turns == 1
    engine = _engine(load(react_face), reaction_redraw='turn')
    assert {r for _, r in _ticks(engine, _turns())} == {0}
