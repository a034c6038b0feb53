"""Frame inputs: pretrained speech encoders and transcripts, causal, streaming as in batch."""

import numpy as np
import pytest
import torch

from encoder_fixtures import save_speech_encoder, save_text_encoder
from listener_head_ros.features import FeatureConfig
from listener_head_ros.models.base import SideInputs, StepContext, TRANSCRIPT, TranscriptEvent
from listener_head_ros.models.checkpoint import load_checkpoint
from listener_head_ros.models.frame_inputs import (ACOUSTIC, FrameInputs, InputConfig, LEXICAL,
                                                   SPEECH)
from listener_head_ros.models.learned import save_learned_checkpoint, TorchListenerModel
from listener_head_ros.models.registry import build_network
from listener_head_ros.models.speech_encoder import load_speech_model
from listener_head_ros.models.text_features import TextFeatures, TIMING_COLUMNS

pytest.importorskip('transformers')
FEATURES = FeatureConfig()
HOP = FEATURES.hop_length
EVENTS = (TranscriptEvent(0.4, 'well', final=False),
          TranscriptEvent(0.7, 'well really', final=False),
          TranscriptEvent(1.1, 'well really?', final=True), TranscriptEvent(1.6, 'okay.'))


@pytest.fixture(scope='module')
def encoders(tmp_path_factory):
    """Return directories of a tiny wav2vec2, HuBERT, WavLM and BERT."""
    root = tmp_path_factory.mktemp('encoders')
    found = {kind: save_speech_encoder(root / kind, kind) for kind in
             ('wav2vec2', 'hubert', 'wavlm')}
    found['bert'] = save_text_encoder(root / 'bert')
    return found


def _audio(seconds: float = 2.0, seed: int = 0) -> np.ndarray:
    return (0.1 * np.random.default_rng(seed).standard_normal(int(seconds * 16000))).astype(
        np.float32)


def _model(inputs: FrameInputs, seed: int = 0) -> TorchListenerModel:
    torch.manual_seed(seed)
    network = build_network('causal_gru_mdn', {'input_dim': inputs.dim, 'conv_channels': 8,
                                               'hidden_size': 16, 'num_layers': 1})
    return TorchListenerModel(network, FEATURES, inputs=inputs)


@pytest.mark.parametrize('kind', ['wav2vec2', 'hubert', 'wavlm'])
def test_speech_encoders_load_by_path_and_stream_as_in_batch(kind, encoders):
    """Each encoder loads from its directory; stepping hops gives the batch rows exactly."""
    inputs = FrameInputs(InputConfig(speech_encoder=str(encoders[kind]),
                                     speech_layers=(1, -1), speech_window=0.5,
                                     speech_every=2), FEATURES, local_files_only=True)
    assert inputs.config.speech_dim == 16 and inputs.dim == 68 + 32
    audio = _audio(1.5)
    contexts = SideInputs().contexts(audio.size // HOP, HOP / 16000)
    batch = inputs.matrix(audio, contexts)
    inputs.reset()
    streamed = np.stack([inputs.step(audio[i * HOP:(i + 1) * HOP], c)
                         for i, c in enumerate(contexts)])
    np.testing.assert_allclose(streamed, batch, atol=2e-5, rtol=1e-4)
    assert np.all(batch[1::2, 68:] == batch[0::2, 68:][:len(batch[1::2])])  # held between runs


def test_speech_rows_never_see_later_audio(encoders):
    """The input of frame t does not change when the audio after frame t changes."""
    inputs = FrameInputs(InputConfig(speech_encoder=str(encoders['wav2vec2']), acoustic=False,
                                     speech_every=1, speech_window=0.4), FEATURES,
                         local_files_only=True)
    audio = _audio(1.2)
    frames = audio.size // HOP
    contexts = SideInputs().contexts(frames, HOP / 16000)
    before = inputs.matrix(audio, contexts)
    for t in (3, 10, frames - 2):
        changed = audio.copy()
        changed[(t + 1) * HOP:] = _audio(2.0, seed=t)[:changed.size - (t + 1) * HOP]
        after = inputs.matrix(changed, contexts)
        np.testing.assert_array_equal(after[:t + 1], before[:t + 1])
        assert not np.allclose(after[t + 1:], before[t + 1:])


def test_cached_blocks_stand_in_for_the_audio_and_a_missing_block_is_refused(encoders):
    """Rows from cached blocks equal rows from audio; without audio an uncached block is named."""
    inputs = FrameInputs(InputConfig(speech_encoder=str(encoders['wav2vec2']),
                                     speech_every=2, speech_window=0.4), FEATURES,
                         local_files_only=True)
    audio = _audio(1.0)
    contexts = SideInputs().contexts(audio.size // HOP, HOP / 16000)
    rows = inputs.matrix(audio, contexts)
    cached = {ACOUSTIC: rows[:, :68], SPEECH: rows[:, 68:]}
    np.testing.assert_array_equal(inputs.matrix(None, contexts, cached), rows)
    with pytest.raises(ValueError, match='no audio to compute the speech block'):
        inputs.matrix(None, contexts, {ACOUSTIC: rows[:, :68]})


def test_a_model_that_is_no_speech_encoder_is_refused(encoders, tmp_path):
    """A text model named as the speech encoder, or nothing there, is a clear error."""
    with pytest.raises(ValueError, match='speech encoder must be one of'):
        load_speech_model(str(encoders['bert']), local_files_only=True)
    with pytest.raises(OSError):  # nothing there, and nothing is downloaded
        load_speech_model(str(tmp_path / 'missing'), local_files_only=True)
    with pytest.raises(ValueError, match='hidden states'):
        FrameInputs(InputConfig(speech_encoder=str(encoders['hubert']), speech_layers=(7,)),
                    FEATURES, local_files_only=True)


def test_text_rows_are_causal_and_follow_incremental_results():
    """A result changes the rows from its step on only; a revision reveals only new words."""
    text = TextFeatures(buckets=16, decay=0.5)
    frames = 60
    contexts = SideInputs(EVENTS).contexts(frames, HOP / 16000)
    rows = text.rows(contexts)
    assert rows.shape == (frames, 16 + len(TIMING_COLUMNS))
    first = next(i for i, c in enumerate(contexts) if c.transcripts)
    assert not rows[:first].any() and rows[first].any()
    later = SideInputs(EVENTS[:2]).contexts(frames, HOP / 16000)
    cut = next(i for i, c in enumerate(contexts) if c.transcripts and c.transcripts[0] is
               EVENTS[2])
    np.testing.assert_array_equal(text.rows(later)[:cut], rows[:cut])
    text.reset()
    text.step(StepContext(0.4, (EVENTS[0],)))
    revealed = len(text._words)
    text.step(StepContext(0.7, (EVENTS[1],)))
    assert len(text._words) == revealed + 1  # 'well' is not revealed twice


def test_learned_model_with_speech_and_text_streams_as_in_batch_and_round_trips(
        encoders, tmp_path):
    """Audio + transcripts: step == run, the checkpoint reloads the same model by path."""
    config = InputConfig(speech_encoder=str(encoders['wavlm']), speech_window=0.5,
                         speech_every=3, text=str(encoders['bert']))
    model = _model(FrameInputs(config, FEATURES, local_files_only=True))
    assert TRANSCRIPT in model.inputs
    audio = _audio(2.0)
    side = SideInputs(EVENTS)
    batch = model.run(audio, side)
    model.reset()
    contexts = model.contexts(len(batch), side)
    streamed = [model.step(audio[i * HOP:(i + 1) * HOP], c) for i, c in enumerate(contexts)]
    np.testing.assert_allclose([f.pose for f in streamed], [f.pose for f in batch], atol=1e-5)
    save_learned_checkpoint(tmp_path / 'ckpt', model)
    loaded = load_checkpoint(tmp_path / 'ckpt')
    assert loaded.frame_inputs.config == model.frame_inputs.config
    assert any('runs on the CPU' in w and 'ms per' in w for w in loaded.warnings)
    np.testing.assert_allclose([f.pose for f in loaded.run(audio, side)],
                               [f.pose for f in batch], atol=1e-6)


def test_the_transcript_changes_a_text_model_and_not_an_audio_model():
    """Same audio, with and without words: only the model that reads text moves otherwise."""
    audio = _audio(2.0)
    text_model = _model(FrameInputs(InputConfig(text=LEXICAL), FEATURES))
    audio_model = _model(FrameInputs(InputConfig(), FEATURES))
    for model, changes in ((text_model, True), (audio_model, False)):
        silent = np.array([f.pose for f in model.run(audio)])
        heard = np.array([f.pose for f in model.run(audio, SideInputs(EVENTS))])
        assert bool(np.abs(heard - silent).max() > 1e-4) is changes


def test_checkpoints_naming_missing_or_other_encoders_are_refused(encoders, tmp_path):
    """A missing encoder directory, or one of another size than recorded, fails the load."""
    model = _model(FrameInputs(InputConfig(speech_encoder=str(encoders['hubert']),
                                           speech_window=0.2), FEATURES,
                               local_files_only=True))
    save_learned_checkpoint(tmp_path / 'ckpt', model)
    moved = tmp_path / 'moved'
    encoders['hubert'].rename(moved)
    try:
        with pytest.raises(Exception, match='frame inputs'):
            load_checkpoint(tmp_path / 'ckpt')
    finally:
        moved.rename(encoders['hubert'])
    with pytest.raises(ValueError, match='speech_dim 8'):
        FrameInputs(InputConfig(speech_encoder=str(encoders['hubert']), speech_dim=8),
                    FEATURES, local_files_only=True)
