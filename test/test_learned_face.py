"""
Tests of the learned face on the robot: its head, its face, one reaction followed per turn.

The FaceVerse rotation to head map, the face of a learned facial checkpoint, and the robot
following one sampled reaction (per speaker turn) through the engine.

:func:`facial_checkpoint` builds the tiny learned facial model these tests (and the node's
integration test) run: a small ``causal_gru_mdn`` with targets ``('facial_attributes',
'coefficients')`` fitted in a few hundred optimizer steps to constructed, non-neutral
targets on the features of a constructed speech signal.
"""

import math
from pathlib import Path
from typing import Optional

import numpy as np
import pytest
import torch

from listener_head_ros.audio.ring_buffer import AudioRingBuffer
from listener_head_ros.engine import EngineConfig, ListenerEngine
from listener_head_ros.face import (
    ACTION_UNIT_INDEX, BLENDSHAPE_INDEX, faceverse_blendshapes, react_attributes_to_face)
from listener_head_ros.features import extract_features, FeatureConfig
from listener_head_ros.models.checkpoint import load_checkpoint
from listener_head_ros.models.frame_features import feature_matrix, feature_statistics
from listener_head_ros.models.learned import InferenceConfig, save_learned_checkpoint
from listener_head_ros.models.networks import CausalGRUListener, GRUListenerConfig
from listener_head_ros.streams import (
    COEFFICIENTS, EXPRESSION_COLUMNS, FACEVERSE_FRONTAL_ROTATION, faceverse_rotation_to_head,
    FACIAL_ATTRIBUTES, HEAD, PREDICTED, ROTATION_COLUMNS, total_dim)

RATE = 16000
TARGETS = (FACIAL_ATTRIBUTES.name, COEFFICIENTS.name)
# The head the constructed targets hold, relative to the frontal neutral: inside the limits.
HEAD_OFFSET = np.array([0.04, 0.12, -0.08])  # roll (rot_z), pitch (rot_x), yaw (rot_y), rad
SMILE = ('mouthSmileLeft', 'mouthSmileRight')


def speech_signal(seconds: float = 3.0, seed: int = 0) -> np.ndarray:
    """Return speech-like audio: voiced gliding tones in 0.6 s phrases with 0.3 s pauses."""
    t = np.arange(int(seconds * RATE)) / RATE
    f0 = 130.0 + 30.0 * np.sin(2 * np.pi * 0.7 * t)
    voiced = (t % 0.9) < 0.6
    tone = 0.3 * np.sin(2 * np.pi * np.cumsum(f0) / RATE) * voiced
    noise = 0.01 * np.random.default_rng(seed).standard_normal(t.size)
    return (tone + noise).astype(np.float32)


def facial_targets(frames: int) -> np.ndarray:
    """Return constructed non-neutral (T, 83) targets: smiling, happy, nodding a little."""
    phase = np.sin(np.linspace(0.0, 6.0, frames))
    attributes = np.zeros((frames, FACIAL_ATTRIBUTES.dim), dtype=np.float32)
    channels = FACIAL_ATTRIBUTES.channels
    attributes[:, channels.index('AU12')] = 0.7 + 0.1 * phase
    attributes[:, channels.index('AU6')] = 0.5
    attributes[:, channels.index('valence')] = 0.6
    attributes[:, channels.index('arousal')] = 0.3 + 0.1 * phase
    attributes[:, channels.index('p_Happy')] = 0.8
    attributes[:, channels.index('p_Neutral')] = 0.1
    coefficients = np.zeros((frames, COEFFICIENTS.dim), dtype=np.float32)
    for name in SMILE:
        coefficients[:, BLENDSHAPE_INDEX[name]] = 0.6 + 0.1 * phase
    coefficients[:, BLENDSHAPE_INDEX['jawOpen']] = -0.2  # a fitted weight below 0: clipped
    roll, pitch, yaw = HEAD_OFFSET
    frontal = np.asarray(FACEVERSE_FRONTAL_ROTATION)
    offsets = np.stack([pitch + 0.02 * phase, np.full(frames, yaw), np.full(frames, roll)], 1)
    coefficients[:, ROTATION_COLUMNS] = frontal + offsets
    coefficients[:, 55:] = (0.0, 0.0, 6.0)
    return np.concatenate([attributes, coefficients], axis=1)


def facial_network(steps: int = 200, seed: int = 0) -> CausalGRUListener:
    """
    Return a tiny facial network (targets facial_attributes + coefficients), fitted.

    A causal GRU with a 2-component mixture head, fitted with Adam to :func:`facial_targets` on
    the features of :func:`speech_signal`.
    """
    torch.manual_seed(seed)
    features = feature_matrix(extract_features(speech_signal(), FeatureConfig()))
    network = CausalGRUListener(GRUListenerConfig(
        conv_channels=8, conv_kernel=3, hidden_size=16, num_layers=1, num_mixtures=2,
        dropout=0.0, output_dim=total_dim(TARGETS)))
    network.norm.set_statistics(*feature_statistics([features]))
    x = torch.from_numpy(features)[None]
    y = torch.from_numpy(facial_targets(len(features)))[None]
    optimizer = torch.optim.Adam(network.parameters(), lr=0.04)
    for _ in range(steps):
        optimizer.zero_grad()
        network.loss(network(x), y).backward()
        optimizer.step()
    return network


def facial_checkpoint(directory: Path, num_samples: int = 1,
                      network: Optional[CausalGRUListener] = None) -> Path:
    """Save :func:`facial_network` (or ``network``); ``num_samples`` > 1 in 'sample' mode."""
    inference = (InferenceConfig(mode='sample', num_samples=num_samples, noise_correlation=0.9)
                 if num_samples > 1 else InferenceConfig())
    return save_learned_checkpoint(directory, network or facial_network(), inference=inference,
                                   targets=TARGETS)


@pytest.fixture(scope='module')
def checkpoints(tmp_path_factory):
    """Return the deterministic and the 4-sample facial checkpoints of one fitted network."""
    root = tmp_path_factory.mktemp('facial')
    torch.set_num_threads(1)
    network = facial_network()
    return {1: facial_checkpoint(root / 'mean', 1, network),
            4: facial_checkpoint(root / 'sample', 4, network)}


def load(path: Path):
    """Load a checkpoint at the default 30.019 frames/s on the CPU."""
    return load_checkpoint(path, FeatureConfig().frame_rate, 'cpu')


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


def test_a_learned_facial_checkpoint_gives_a_non_neutral_face_and_head(checkpoints):
    """AUs, valence, expression, blendshapes and a head from the rotation stream, all finite."""
    model = load(checkpoints[1])
    assert model.outputs[HEAD.name] == PREDICTED and model.outputs['blendshapes'] == PREDICTED
    frames = model.run(speech_signal(2.0, seed=1))
    later = frames[len(frames) // 2:]
    units = np.array([f.action_units for f in later])
    assert units[:, ACTION_UNIT_INDEX['AU12']].mean() > 0.5
    assert np.mean([f.valence for f in later]) > 0.3
    assert {f.expression for f in later} == {'happy'}
    weights = np.array([f.blendshapes for f in later])
    for name in SMILE:
        assert weights[:, BLENDSHAPE_INDEX[name]].mean() > 0.4
    assert weights[:, BLENDSHAPE_INDEX['jawOpen']].max() == 0.0  # negative fits clip to 0
    assert 0.0 <= weights.min() and weights.max() <= 1.0
    heads = np.array([f.pose for f in later])  # near the targets' head (a few steps of fit)
    assert np.all(np.sign(heads.mean(axis=0)) == np.sign(HEAD_OFFSET))
    assert np.allclose(heads.mean(axis=0), HEAD_OFFSET, atol=0.15)
    for frame in later:  # the head is the frame's own rotation, read relative to the neutral
        rotation = frame.coefficients[ROTATION_COLUMNS]
        assert np.allclose(frame.pose, faceverse_rotation_to_head(rotation), atol=1e-6)
        assert np.array_equal(frame.blendshapes,
                              faceverse_blendshapes(frame.coefficients[EXPRESSION_COLUMNS]))
    assert all(np.isfinite(f.pose).all() and np.isfinite(f.blendshapes).all() for f in frames)


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


def test_the_robot_follows_one_sample_throughout_without_redraws(checkpoints):
    """With reaction_redraw 'never' every published face is sample 0's, never another's."""
    engine = _engine(load(checkpoints[4]))
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


def test_turn_redraws_switch_only_at_turn_onsets_and_repeat_by_seed(checkpoints):
    """'turn': a new sample at each onset after a pause, constant within a turn, seeded."""
    audio = _turns()
    runs = {}
    for seed in (0, 0, 5):
        engine = _engine(load(checkpoints[4]), reaction_redraw='turn', turn_pause=1.0,
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


def test_a_short_pause_keeps_the_turn_and_one_sample_never_redraws(checkpoints):
    """Pauses shorter than turn_pause stay in the turn; a deterministic model stays at 0."""
    engine = _engine(load(checkpoints[4]), reaction_redraw='turn', turn_pause=1.0)
    reactions = [r for _, r in _ticks(engine, _turns((1.2, 0.5, 1.2)))]
    assert len(set(reactions)) == 1 and engine.reactions.turns == 1
    engine = _engine(load(checkpoints[1]), reaction_redraw='turn')
    assert {r for _, r in _ticks(engine, _turns())} == {0}
