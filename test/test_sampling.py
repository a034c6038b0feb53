"""The node's sampling settings replace a learned checkpoint's inference settings."""

import pytest
import torch

from listener_head_ros.build import build_listener
from listener_head_ros.models.flow import CausalGRUFlow, FlowListenerConfig
from listener_head_ros.models.learned import InferenceConfig, save_learned_checkpoint
from listener_head_ros.schema import SettingsError
from listener_head_ros.settings import ListenerSettings
from listener_head_ros.streams import total_dim

FACE = ('facial_attributes', 'coefficients')


@pytest.fixture(scope='module')
def flow_checkpoint(tmp_path_factory):
    """Return a random-weight flow checkpoint saved to run its point prediction."""
    torch.manual_seed(0)
    network = CausalGRUFlow(FlowListenerConfig(
        output_dim=total_dim(FACE), conv_channels=8, hidden_size=12, num_layers=1,
        flow_width=16, flow_layers=1, time_dim=4, dropout=0.0))
    directory = tmp_path_factory.mktemp('flow') / 'checkpoint'
    save_learned_checkpoint(directory, network, inference=InferenceConfig(), targets=FACE)
    return str(directory)


def test_sample_mode_draws_the_set_number_of_coherent_reactions(flow_checkpoint):
    """sampling.mode 'sample' makes the node draw num_samples reactions with its settings."""
    settings = ListenerSettings().with_values(**{
        'model': flow_checkpoint, 'sampling.mode': 'sample', 'sampling.num_samples': 3,
        'sampling.temperature': 0.7, 'sampling.noise_correlation': 0.9, 'sampling.seed': 5})
    model = build_listener(settings).model
    assert model.num_samples == 3
    inference = model.inference
    assert (inference.mode, inference.temperature, inference.noise_correlation,
            inference.seed) == ('sample', 0.7, 0.9, 5)
    assert build_listener(ListenerSettings().with_values(model=flow_checkpoint)
                          ).model.num_samples == 1  # '' keeps the checkpoint's own


def test_mean_mode_and_bad_values_are_refused_or_applied(flow_checkpoint):
    """'mean' gives one reaction; sampling for the embedded model or a bad mode is refused."""
    settings = ListenerSettings().with_values(**{'model': flow_checkpoint,
                                                 'sampling.mode': 'mean'})
    assert build_listener(settings).model.inference.mode == 'mean'
    with pytest.raises(SettingsError, match='needs a learned checkpoint'):
        build_listener(ListenerSettings().with_values(**{'sampling.mode': 'sample'}))
    with pytest.raises((SettingsError, ValueError), match='sampling.mode'):
        ListenerSettings().with_values(**{'sampling.mode': 'random'})
    with pytest.raises(SettingsError, match='num_samples'):
        ListenerSettings().with_values(**{'sampling.num_samples': 65})
