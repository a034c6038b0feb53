"""The speaker role: IEMOCAP's marker wearer's own turns train a speaking model."""

import json

import numpy as np
import pytest
import soundfile as sf
import torch

from listener_head_ros.build import build_listener
from listener_head_ros.data.feature_cache import FeatureCache, INDEX_FILE, prepare_cache
from listener_head_ros.data.iemocap import FLOORS_FILES, IemocapConfig, IemocapSource
from listener_head_ros.data.synthetic_iemocap import generate_corpus, SyntheticConfig
from listener_head_ros.features import extract_features
from listener_head_ros.models.checkpoint import checkpoint_role, save_prosodic_checkpoint
from listener_head_ros.models.learned import save_learned_checkpoint, TorchListenerModel
from listener_head_ros.models.prosodic import ProsodicListenerConfig
from listener_head_ros.models.registry import build_network
from listener_head_ros.roles import LISTENING, SPEAKING
from listener_head_ros.schema import SettingsError
from listener_head_ros.settings import ListenerSettings

TINY = SyntheticConfig(sessions=(1, 2), dialogs_per_session=4, turns_per_dialog=8)
_CHANNEL = {'F': 0, 'M': 1}  # the generator's channels: female left, male right
_LAGS = 30  # frames of past features the linear fit sees: 1 s, a nod's lag and length
_SPEECH_DB = -45.0  # frame energy above it is speech (the generator's floor is -70 dBFS)


@pytest.fixture(scope='module')
def corpus(tmp_path_factory):
    """Generate the tiny two-session corpus once."""
    return generate_corpus(tmp_path_factory.mktemp('speaking'), TINY, seed=3)


@pytest.fixture(scope='module')
def streams(corpus):
    """Return the speaker-role dialog streams of the corpus."""
    return list(IemocapSource(corpus.root, IemocapConfig(role=SPEAKING), (1, 2)).dialogs())


def test_speaker_streams_hear_the_wearer_and_follow_its_own_turns(corpus, streams):
    """The audio is the wearer's own channel; one segment per utterance of the wearer's own."""
    assert len(streams) == len(corpus.dialogs)
    for stream in streams:
        truth = corpus.dialog(stream.dialog_id)
        wav, _ = sf.read(str(corpus.root / f'Session{truth.session}' / 'dialog' / 'wav'
                             / f'{truth.name}.wav'), dtype='float32', always_2d=True)
        own = wav[:stream.audio.size, _CHANNEL[truth.wearer]]
        assert np.array_equal(stream.audio, own)
        assert [s.utterance_id for s in stream.segments] == [
            u.utterance_id for u in truth.utterances if u.speaker == truth.wearer]
        assert stream.meta['role'] == SPEAKING and stream.meta['listener'] == truth.wearer
        for seg in stream.segments:  # a window never reaches the interlocutor's next turn
            others = [u for u in truth.utterances
                      if u.speaker != truth.wearer and u.start * 16000 >= seg.end * 533]
            if others:
                assert seg.window_end * 533 <= round(others[0].start * 16000) + 533


def test_cache_and_floors_record_the_role(corpus, tmp_path):
    """The cache's index says its role; each role's floors file names it and its baseline."""
    speaking = prepare_cache(IemocapSource(corpus.root, IemocapConfig(role=SPEAKING), (1,)),
                             tmp_path / 'speaking', progress=False)
    listening = prepare_cache(IemocapSource(corpus.root, sessions=(1,)),
                              tmp_path / 'listening', progress=False)
    assert speaking.role == SPEAKING and listening.role == LISTENING
    index = json.loads((tmp_path / 'speaking' / INDEX_FILE).read_text())
    assert index['role'] == SPEAKING and index['source']['config']['role'] == SPEAKING
    assert speaking.floors == corpus.reference_floors(SPEAKING)
    assert listening.floors == corpus.reference_floors(LISTENING)
    for role, name in FLOORS_FILES.items():
        floors = json.loads((corpus.root / name).read_text())
        assert floors['role'] == role
        assert floors['streams']['head']['floor']['protocol']['mean'] == corpus.floor_mae_deg
        assert floors['streams']['head']['neutral_mae'] == corpus.neutral_mae(role)
    del index['role']  # a cache from before roles is a listener's
    (tmp_path / 'speaking' / INDEX_FILE).write_text(json.dumps(index))
    assert FeatureCache(tmp_path / 'speaking').role == LISTENING
    with pytest.raises(ValueError, match='role'):
        IemocapConfig(role='narrator')


def _tiny_checkpoint(directory, role):
    torch.manual_seed(0)
    network = build_network('causal_gru_mdn', {'hidden_size': 8, 'num_layers': 1,
                                               'conv_channels': 8, 'num_mixtures': 1})
    return str(save_learned_checkpoint(directory, network, role=role))


def test_a_checkpoint_runs_only_in_its_role(tmp_path):
    """A speaking checkpoint loads as speaking_model and is refused as model, and vice versa."""
    speaking = _tiny_checkpoint(tmp_path / 'speaking', SPEAKING)
    listening = _tiny_checkpoint(tmp_path / 'listening', LISTENING)
    prosodic = str(save_prosodic_checkpoint(tmp_path / 'prosodic', ProsodicListenerConfig()))
    assert checkpoint_role(speaking) == SPEAKING and checkpoint_role(listening) == LISTENING
    assert checkpoint_role(prosodic) == LISTENING
    built = build_listener(ListenerSettings(model=listening, speaking_model=speaking))
    assert isinstance(built.speaker, TorchListenerModel) and built.speaker is not built.model
    with pytest.raises(SettingsError, match='a speaker model; set it as speaking_model'):
        build_listener(ListenerSettings(model=speaking))
    with pytest.raises(SettingsError, match='a listener model; set it as model'):
        build_listener(ListenerSettings(speaking_model=listening))
    with pytest.raises(SettingsError, match='speaking_model'):
        build_listener(ListenerSettings(speaking_model=prosodic))


def _lagged(features: np.ndarray) -> np.ndarray:
    """Return each frame's last :data:`_LAGS` feature rows side by side (zeros before 0)."""
    padded = np.concatenate([np.zeros((_LAGS - 1, features.shape[1])), features])
    return np.concatenate([padded[k:k + len(features)] for k in range(_LAGS)][::-1], axis=1)


def _design(stream):
    """Return causal rows: the last second of own speech onsets and ends, and a constant."""
    speaking = extract_features(stream.audio, IemocapConfig().features).energy_db > _SPEECH_DB
    change = np.diff(speaking.astype(float), prepend=0.0)
    rows = np.stack([np.maximum(change, 0.0), np.maximum(-change, 0.0)], axis=1)
    return np.concatenate([_lagged(rows), np.ones((len(rows), 1))], axis=1)


def test_planted_speaking_relation_is_learnable_from_own_speech(streams):
    """A causal linear fit of the own pitch on own speech onsets halves the constant's MAE."""
    train, test = streams[:6], streams[6:]

    def frames(group):
        xs, ys = [], []
        for stream in group:
            keep = stream.window & stream.valid['head']
            xs.append(_design(stream)[keep])
            ys.append(np.rad2deg(stream.targets['head'][keep, 1]))  # pitch
        return np.concatenate(xs), np.concatenate(ys)

    x, y = frames(train)
    weights = np.linalg.solve(x.T @ x + 1e-3 * np.eye(x.shape[1]), x.T @ y)
    x_test, y_test = frames(test)
    fit = np.abs(x_test @ weights - y_test).mean()
    constant = np.abs(np.median(y) - y_test).mean()
    assert fit < 0.6 * constant
