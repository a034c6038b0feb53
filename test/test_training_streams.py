"""The trainer is generic over target streams and split schemes: a fixed split, two streams."""

import io
import math

import pytest
import torch

from listener_head_ros.data.feature_cache import prepare_cache
from listener_head_ros.models.checkpoint import load_checkpoint
from listener_head_ros.training import trainer
from listener_head_ros.training.config import TrainConfig
from test_feature_cache import FixedSplitSource

TINY_GRU = {'conv_channels': 8, 'hidden_size': 8, 'num_layers': 1, 'num_mixtures': 2,
            'dropout': 0.0}


@pytest.fixture(scope='module')
def results(tmp_path_factory):
    """Train a tiny model on a fixed-split corpus with head and facial-attribute targets."""
    base = tmp_path_factory.mktemp('streams')
    prepare_cache(FixedSplitSource(), base / 'cache', progress=False, out=io.StringIO())
    config = TrainConfig(cache_dir=str(base / 'cache'), out_dir=str(base / 'run'),
                         model=TINY_GRU, targets=('head', 'facial_attributes'),
                         loss_weights={'facial_attributes': 0.5}, steps=3, batch_size=2,
                         crop_frames=16, burn_in_frames=8, warmup_steps=1, log_every=1,
                         checkpoint_every=3, device='cpu', mixed_precision=False)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return config, trainer.cross_validation(config, trainer.Distributed())
    finally:
        torch.set_num_threads(threads)


def test_fixed_split_trains_once_and_scores_every_stream(results):
    """One fold, 'test', trained on 'train'; figures for both streams; head also streamed."""
    config, summary = results
    assert list(summary['folds']) == ['test'] and summary['split']['kind'] == 'fixed'
    fold = summary['folds']['test']
    assert fold['train_groups'] == ['train'] and fold['test_groups'] == ['test']
    figures = fold['figures']
    assert set(figures['model']) == {'head', 'facial_attributes'}
    assert set(figures['streaming']) == {'head'}  # the node publishes the head pose
    for stream in ('head', 'facial_attributes'):
        assert all(math.isfinite(figures['model'][stream][f]) for f in ('protocol', 'window'))
    attributes = fold['summaries']['model']['facial_attributes']['window']
    assert len(attributes['mae']) == 25 and attributes['n_utterances'] == 1
    assert fold['summaries']['model']['facial_attributes']['tail']['n_utterances'] == 1
    assert 'units' in attributes and fold['floor_ratio'] == {}  # no reference floors
    model = load_checkpoint(fold['checkpoint'], device='cpu')
    assert model.targets == ('head', 'facial_attributes')
    assert model.network.config.output_dim == 28


def test_per_stream_losses_are_weighted(results, monkeypatch):
    """The loss is the network's own per stream, on that stream's columns, weighted."""
    config, _ = results
    network = trainer.build_network(config.model_type, {**config.model, 'output_dim': 28})
    loss = trainer._TrainingLoss(network, [slice(0, 3), slice(3, 28)])
    x, y = torch.randn(2, 12, 68), torch.randn(2, 12, 28)
    mask = torch.ones(2, 12, 28, dtype=torch.bool)
    mask[:, :4, 3:] = False  # facial attributes unknown on the first frames
    losses = loss(x, y, mask)
    assert losses.shape == (2,)
    outputs = network(x)
    head_only = torch.zeros_like(mask)
    head_only[..., :3] = True
    torch.testing.assert_close(losses[0], network.loss(outputs, y, head_only))
    face_only = mask.clone()
    face_only[..., :3] = False
    torch.testing.assert_close(losses[1], network.loss(outputs, y, face_only))
    assert config.weight('facial_attributes') == 0.5 and config.weight('head') == 1.0
