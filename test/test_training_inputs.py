"""Training on pretrained-encoder inputs: computed once into the cache, run by the checkpoint."""

import io
import json

import numpy as np
import pytest
import torch

from encoder_fixtures import save_speech_encoder
from listener_head_ros.data.feature_cache import FeatureCache, prepare_cache
from listener_head_ros.data.react2025 import React2025Config, React2025Source
from listener_head_ros.data.speech_cache import load_speech_rows, speech_dir
from listener_head_ros.data.synthetic_react import generate_corpus, SMALL
from listener_head_ros.models import speech_encoder
from listener_head_ros.models.checkpoint import load_checkpoint
from listener_head_ros.models.frame_inputs import FrameInputs, InputConfig
from listener_head_ros.streams import FACIAL_ATTRIBUTES
from listener_head_ros.training import trainer
from listener_head_ros.training.config import ConfigError, TrainConfig

pytest.importorskip('transformers')
TINY_FLOW = {'conv_channels': 8, 'hidden_size': 8, 'num_layers': 1, 'flow_width': 16,
             'flow_layers': 1, 'time_dim': 4, 'dropout': 0.0}


@pytest.fixture(scope='module')
def corpus(tmp_path_factory):
    """Return the small synthetic REACT cache and a tiny HuBERT's directory."""
    base = tmp_path_factory.mktemp('inputs')
    root = generate_corpus(base / 'corpus', SMALL)
    cache = prepare_cache(React2025Source(React2025Config(root=root)), base / 'cache',
                          progress=False, out=io.StringIO())
    return cache, save_speech_encoder(base / 'hubert', 'hubert')


def _config(cache: FeatureCache, out_dir, inputs, **changes) -> TrainConfig:
    settings = dict(
        cache_dir=str(cache.cache_dir), out_dir=str(out_dir), model_type='causal_gru_flow',
        model=TINY_FLOW, targets=(FACIAL_ATTRIBUTES.name,), steps=4, batch_size=2,
        crop_frames=32, burn_in_frames=8, warmup_steps=1, device='cpu', mixed_precision=False,
        streaming_eval=False, inputs=inputs)
    return TrainConfig(**{**settings, **changes})


def test_speech_rows_are_computed_once_and_are_what_the_node_computes(
        corpus, tmp_path, monkeypatch):
    """The cached rows equal the streaming encoder's; a second run reuses them."""
    cache, encoder = corpus
    inputs = {'speech_encoder': str(encoder), 'speech_window': 0.5, 'speech_layers': [1, 2]}
    torch.set_num_threads(1)
    results = trainer.cross_validation(_config(cache, tmp_path / 'a', inputs),
                                       trainer.Distributed())
    model = load_checkpoint(results['folds']['test']['checkpoint'])
    assert model.frame_inputs.config.speech_dim == 16
    assert model.frame_inputs.dim == 68 + 32
    folder = speech_dir(cache, model.frame_inputs)
    assert json.loads((folder / 'index.json').read_text())['settings']['width'] == 32
    info = cache.dialogs[3]
    cached = load_speech_rows(folder, info, 32)
    streaming = FrameInputs(model.frame_inputs.config, cache.feature_config)
    audio = cache.load_audio(3)
    hop = cache.feature_config.hop_length
    stepped = np.stack([streaming.speech.step(audio[i * hop:(i + 1) * hop])
                        for i in range(info.n_frames)])
    np.testing.assert_allclose(cached, stepped, atol=2e-5, rtol=1e-4)
    runs = []
    monkeypatch.setattr(speech_encoder.WindowedSpeechEncoder, 'encode',
                        lambda *args, **kwargs: runs.append(1))
    trainer.cross_validation(_config(cache, tmp_path / 'b', inputs), trainer.Distributed())
    assert not runs  # the rows came from the cache


def test_text_inputs_train_and_are_recorded_in_the_checkpoint(corpus, tmp_path):
    """A text-aware config trains (REACT has no transcripts: the columns stay silent)."""
    cache, _ = corpus
    results = trainer.cross_validation(_config(cache, tmp_path, {'text': 'lexical'}),
                                       trainer.Distributed())
    model = load_checkpoint(results['folds']['test']['checkpoint'])
    assert model.frame_inputs.config == InputConfig(text='lexical')
    assert 'transcript' in model.inputs


@pytest.mark.parametrize('inputs, message', [
    ({'speech_layers': [1.5]}, 'whole numbers'), ({'acoustic': False}, 'audio input'),
    ({'speach_encoder': 'x'}, 'speach_encoder'), ({'speech_every': 0}, 'speech_every'),
])
def test_bad_input_settings_are_config_errors(corpus, tmp_path, inputs, message):
    """Each wrong inputs setting is refused by name before anything trains."""
    cache, _ = corpus
    with pytest.raises(ConfigError, match=message):
        _config(cache, tmp_path, inputs)


def test_a_learned_weighted_sum_of_layers_trains_and_streams(corpus, tmp_path):
    """speech_mix 'weighted': the network learns layer weights; the checkpoint streams them."""
    cache, encoder = corpus
    inputs = {'speech_encoder': str(encoder), 'speech_window': 0.5, 'speech_layers': [0, 1, 2],
              'speech_mix': 'weighted'}
    results = trainer.cross_validation(_config(cache, tmp_path, inputs), trainer.Distributed())
    model = load_checkpoint(results['folds']['test']['checkpoint'])
    assert model.network.config.layer_mix == (68, 3, 16)
    weights = torch.softmax(model.network.mix.logits.detach(), 0)
    assert torch.isclose(weights.sum(), torch.tensor(1.0)) and not torch.allclose(
        weights, torch.full((3,), 1 / 3))  # trained away from the uniform start
    audio = cache.load_audio(0)[:16000]
    batch = model.run(audio)
    model.reset()
    hop = model.hop_length
    streamed = [model.step(audio[i * hop:(i + 1) * hop]) for i in range(len(batch))]
    np.testing.assert_allclose([f.facial_attributes for f in streamed],
                               [f.facial_attributes for f in batch], atol=1e-5)
    other = _config(cache, tmp_path / 'al', inputs, model_type='causal_active_listener',
                    model={'hidden_dim': 8})
    with pytest.raises(ConfigError, match='learns the mix'):
        trainer.cross_validation(other, trainer.Distributed())
