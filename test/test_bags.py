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
    AUDIO_INFO_TOPIC, AUDIO_TOPIC, BagConfig, convert_corpus, TRANSCRIPT_TOPIC, TRUTH_TOPIC,
    TURN_TOPIC)
from listener_head_ros.bags.reader import read_bag  # noqa: E402
from listener_head_ros.bags.typestore import (  # noqa: E402
    AUDIO_DATA, AUDIO_INFO, BACKCHANNEL, EMBEDDED_LISTENER_MSGS, HEAD_POSE, LIVE_SPEECH,
    listener_typestore, source_msg_dir, STRING)
from listener_head_ros.data.iemocap import (  # noqa: E402
    dialog_stream, find_dialogs, IemocapConfig, iter_dialog_samples)
from listener_head_ros.data.synthetic_iemocap import (  # noqa: E402
    generate_corpus, SyntheticConfig)

TINY = SyntheticConfig(sessions=(1,), dialogs_per_session=2, turns_per_dialog=3)
STAND_IN_LIVE_SPEECH = (Path(__file__).resolve().parent / 'interfaces' / 'hri_msgs' / 'msg'
                        / 'LiveSpeech.msg')


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


def test_live_speech_is_the_released_field_list():
    """The embedded LiveSpeech has the fields and types of hri_msgs 2.x (as the stand-in)."""
    from rosbags.typesys import get_types_from_msg
    store = listener_typestore()
    assert [f[0] for f in store.fielddefs[LIVE_SPEECH][1]] == [
        'header', 'incremental', 'final', 'confidence', 'locale', 'language']
    stand_in = get_types_from_msg(STAND_IN_LIVE_SPEECH.read_text(encoding='utf-8'), LIVE_SPEECH)
    assert stand_in[LIVE_SPEECH] == store.fielddefs[LIVE_SPEECH]


def test_mcap_bag_layout(corpus, mcap_bags):
    """Topics, types, counts, time base and metadata version 8 of an MCAP bag."""
    assert len(mcap_bags) == 2
    summary = mcap_bags[0]
    metadata = yaml.safe_load((summary.path / 'metadata.yaml').read_text())
    info = metadata['rosbag2_bagfile_information']
    assert info['version'] == 8 and info['storage_identifier'] == 'mcap'
    messages, types = read_all(summary.path)
    assert types == {AUDIO_TOPIC: AUDIO_DATA, AUDIO_INFO_TOPIC: AUDIO_INFO,
                     TRUTH_TOPIC: HEAD_POSE, TURN_TOPIC: STRING, TRANSCRIPT_TOPIC: LIVE_SPEECH}
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


def _stream_results(corpus, name, config=IemocapConfig()):
    """Return the transcript events that training sees for one dialog."""
    dialog = next(d for d in find_dialogs(corpus.root, (1,)) if d.name == name)
    return dialog_stream(dialog, config).transcripts


def test_transcript_topic_holds_the_training_transcripts(corpus, mcap_bags):
    """The transcript topic: the IEMOCAP source's events as LiveSpeech at their times."""
    summary = mcap_bags[0]
    messages, _ = read_all(summary.path)
    expected = _stream_results(corpus, summary.dialog)
    speech = messages[TRANSCRIPT_TOPIC]
    assert any(not e.final for e in expected) and any(e.final for e in expected)
    assert len(speech) == len(expected) == summary.counts[TRANSCRIPT_TOPIC]
    for (ns, msg), event in zip(speech, expected):
        when = convert.DEFAULT_EPOCH_NS + int(round(event.time * 1e9))
        assert ns == when == msg.header.stamp.sec * 10 ** 9 + msg.header.stamp.nanosec
        assert (msg.final, msg.incremental) == ((event.text, '') if event.final
                                                else ('', event.text))
        assert msg.confidence == event.confidence and msg.locale == 'en_US'
    contents = read_bag(summary.path)
    assert [(e.text, e.final) for _, e in contents.transcripts] == [
        (e.text, e.final) for e in expected]
    assert [t - contents.start for t, _ in contents.transcripts] == pytest.approx(
        [e.time for e in expected], abs=1e-6)  # float seconds of a 1.7e9 s epoch
    assert not contents.warnings


def test_recogniser_latency_and_cut_bags(corpus, tmp_path):
    """The IEMOCAP config's latency sets the stamps; a cut bag keeps the results before its end."""
    name = corpus.dialogs[0].name
    config = BagConfig(max_seconds=12.0, iemocap=IemocapConfig(asr_latency=0.8))
    summary = convert_corpus(corpus.root, tmp_path / 'slow', (1,), [name], config)[0]
    expected = [e for e in _stream_results(corpus, name, config.iemocap)
                if e.time <= summary.duration_s]
    assert expected and len(expected) < len(_stream_results(corpus, name, config.iemocap))
    got = read_bag(summary.path).transcripts
    assert [e.text for _, e in got] == [e.text for e in expected]
    assert [t for t, _ in got] == pytest.approx(
        [convert.DEFAULT_EPOCH_NS * 1e-9 + e.time for e in expected], abs=1e-6)
    assert convert.main([str(corpus.root), str(tmp_path / 'cli'), '--sessions', '1',
                         '--dialogs', name, '--asr-latency', '0.8', '--max-seconds', '12']) == 0
    assert [(t, e.text) for t, e in read_bag(tmp_path / 'cli' / name).transcripts] == [
        (t, e.text) for t, e in got]


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
