"""Tests of the bag typestore and the IEMOCAP to rosbag2 converter, on real rosbag2 files."""

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml

rosbags = pytest.importorskip('rosbags')

from rosbags.highlevel import AnyReader  # noqa: E402

from listener_head_ros.bags import convert  # noqa: E402
from listener_head_ros.bags.convert import (  # noqa: E402
    AUDIO_INFO_TOPIC, AUDIO_TOPIC, convert_corpus, TRUTH_TOPIC, TURN_TOPIC)
from listener_head_ros.bags.typestore import (  # noqa: E402
    AUDIO_DATA, AUDIO_INFO, BACKCHANNEL, EMBEDDED_LISTENER_MSGS, HEAD_POSE, listener_typestore,
    source_msg_dir, STRING)
from listener_head_ros.data.iemocap import (  # noqa: E402
    find_dialogs, IemocapConfig, iter_dialog_samples)
from listener_head_ros.data.synthetic_iemocap import (  # noqa: E402
    generate_corpus, SyntheticConfig)

TINY = SyntheticConfig(sessions=(1,), dialogs_per_session=2, turns_per_dialog=3)


@pytest.fixture(scope='module')
def corpus(tmp_path_factory):
    """Generate a tiny synthetic corpus: two dialogs of three turns."""
    return generate_corpus(tmp_path_factory.mktemp('corpus'), TINY, seed=3)


@pytest.fixture(scope='module')
def mcap_bags(corpus, tmp_path_factory):
    """Return the MCAP bags of the tiny corpus."""
    return convert_corpus(corpus.root, tmp_path_factory.mktemp('bags'), sessions=(1,))


def read_all(path):
    """Return {topic: [(ns, message)]} and the topic types of a bag."""
    out = {}
    with AnyReader([Path(path)], default_typestore=listener_typestore()) as reader:
        types = {name: info.msgtype for name, info in reader.topics.items()}
        for connection, ns, raw in reader.messages():
            out.setdefault(connection.topic, []).append(
                (ns, reader.deserialize(raw, connection.msgtype)))
    return out, types


def test_embedded_definitions_equal_msg_files():
    """The embedded fallback copy of msg/*.msg cannot drift from the files."""
    for name, text in EMBEDDED_LISTENER_MSGS.items():
        assert (source_msg_dir() / f'{name}.msg').read_text(encoding='utf-8') == text
    assert sorted(p.stem for p in source_msg_dir().glob('*.msg')) == sorted(
        EMBEDDED_LISTENER_MSGS)


def test_typestore_knows_the_real_types():
    """audio_common_msgs and this package's messages are registered with their fields."""
    store = listener_typestore()
    assert store.fielddefs[AUDIO_DATA][1][0][0] == 'data'
    assert [f[0] for f in store.fielddefs[AUDIO_INFO][1]] == [
        'channels', 'sample_rate', 'sample_format', 'bitrate', 'coding_format']
    assert [f[0] for f in store.fielddefs[HEAD_POSE][1]] == [
        'header', 'roll', 'pitch', 'yaw', 'has_angular_velocity', 'angular_velocity']
    assert ('NOD', 'string', 'nod') in store.fielddefs[BACKCHANNEL][0]


def test_mcap_bag_layout(corpus, mcap_bags):
    """Topics, types, counts, time base and metadata version 8 of an MCAP bag."""
    assert len(mcap_bags) == 2
    summary = mcap_bags[0]
    metadata = yaml.safe_load((summary.path / 'metadata.yaml').read_text())
    info = metadata['rosbag2_bagfile_information']
    assert info['version'] == 8 and info['storage_identifier'] == 'mcap'
    messages, types = read_all(summary.path)
    assert types == {AUDIO_TOPIC: AUDIO_DATA, AUDIO_INFO_TOPIC: AUDIO_INFO,
                     TRUTH_TOPIC: HEAD_POSE, TURN_TOPIC: STRING}
    truth = corpus.dialog(summary.dialog)
    rate = 16000
    wav, _ = sf.read(str(corpus.root / 'Session1' / 'dialog' / 'wav' / f'{summary.dialog}.wav'),
                     dtype='int16', always_2d=True)
    assert len(messages[AUDIO_TOPIC]) == wav.shape[0] // 512 == summary.counts[AUDIO_TOPIC]
    assert len(messages[AUDIO_INFO_TOPIC]) == 1
    info_ns, info_msg = messages[AUDIO_INFO_TOPIC][0]
    assert info_ns == convert.DEFAULT_EPOCH_NS
    assert (info_msg.channels, info_msg.sample_rate, info_msg.sample_format) == (
        1, rate, 'S16LE')
    ns0, first = messages[AUDIO_TOPIC][0]
    assert ns0 == convert.DEFAULT_EPOCH_NS + 32_000_000  # stamped at its last sample
    assert len(messages[TURN_TOPIC]) == 2 * len(truth.utterances)
    events = [json.loads(m.data) for _, m in messages[TURN_TOPIC]]
    assert {e['listener'] for e in events} == {truth.wearer}
    assert summary.listener_turns == len(truth.listener_utterances())
    assert abs(len(messages[TRUTH_TOPIC]) - 120 * summary.duration_s) < 130  # minus NaN gaps


def test_audio_round_trip_is_the_interlocutor_channel(corpus, mcap_bags):
    """The audio payloads concatenate to the non-wearer's channel of the wav, sample exact."""
    summary = mcap_bags[0]
    messages, _ = read_all(summary.path)
    audio = np.concatenate([np.frombuffer(m.data.tobytes(), dtype='<i2')
                            for _, m in messages[AUDIO_TOPIC]])
    wav, _ = sf.read(str(corpus.root / 'Session1' / 'dialog' / 'wav' / f'{summary.dialog}.wav'),
                     dtype='int16', always_2d=True)
    channel = 1 if summary.listener == 'F' else 0  # female left: the male speaks on the right
    np.testing.assert_array_equal(audio, wav[:audio.size, channel])


def test_truth_matches_the_training_samples(corpus, mcap_bags):
    """The truth topic, interpolated at a sample's frame times, is the sample's head."""
    summary = mcap_bags[0]
    messages, _ = read_all(summary.path)
    times = np.array([(ns - convert.DEFAULT_EPOCH_NS) * 1e-9 for ns, _ in messages[TRUTH_TOPIC]])
    rpy = np.array([(m.roll, m.pitch, m.yaw) for _, m in messages[TRUTH_TOPIC]])
    dialog = next(d for d in find_dialogs(corpus.root, (1,)) if d.name == summary.dialog)
    config = IemocapConfig(speaker_channel='speaker')
    samples = list(iter_dialog_samples(dialog, config))
    assert samples
    hop = config.features.hop_length
    for sample in samples:
        if sample.interpolated_frames:
            continue  # across a NaN gap both interpolate, but over different rows
        frame_times = sample.start + hop * np.arange(1, len(sample.head) + 1) / 16000
        got = np.stack([np.interp(frame_times, times, rpy[:, a]) for a in range(3)], axis=1)
        np.testing.assert_allclose(got, sample.head, atol=1e-5)


def test_sqlite3_bag_and_cli(corpus, tmp_path):
    """The CLI writes sqlite3 bags that open with the real types; --max-seconds cuts them."""
    out = tmp_path / 'bags'
    code = convert.main([str(corpus.root), str(out), '--storage', 'sqlite3', '--sessions', '1',
                         '--dialogs', corpus.dialogs[0].name, '--max-seconds', '5'])
    assert code == 0
    bag = out / corpus.dialogs[0].name
    info = yaml.safe_load((bag / 'metadata.yaml').read_text())['rosbag2_bagfile_information']
    assert info['version'] == 8 and info['storage_identifier'] == 'sqlite3'
    messages, types = read_all(bag)
    assert types[AUDIO_TOPIC] == AUDIO_DATA and types[TRUTH_TOPIC] == HEAD_POSE
    assert len(messages[AUDIO_TOPIC]) == 5 * 16000 // 512
    assert convert.main([str(corpus.root), str(out), '--sessions', '1', '--dialogs',
                         corpus.dialogs[0].name]) == 2  # exists already: refused, no crash


def test_unknown_dialog_is_refused(corpus, tmp_path, capsys):
    """Asking for a dialog that does not exist gives a clear message."""
    assert convert.main([str(corpus.root), str(tmp_path / 'b'), '--sessions', '1',
                         '--dialogs', 'Ses01F_nothing']) == 2
    assert 'Ses01F_nothing' in capsys.readouterr().err
