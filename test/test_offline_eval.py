"""Tests of offline bag evaluation and of the report, on real rosbag2 files."""

import json
import math
from pathlib import Path

import numpy as np
import pytest

rosbags = pytest.importorskip('rosbags')
matplotlib = pytest.importorskip('matplotlib')

from rosbags.rosbag2 import StoragePlugin, Writer  # noqa: E402

from listener_head_ros.bags.convert import (  # noqa: E402
    AUDIO_INFO_TOPIC, AUDIO_TOPIC, BagConfig, convert_corpus, live_speech_message, offered_qos,
    TRANSCRIPT_TOPIC, TRUTH_TOPIC)
from listener_head_ros.bags.typestore import (  # noqa: E402
    listener_typestore, LIVE_SPEECH, STRING)
from listener_head_ros.data.synthetic_iemocap import (  # noqa: E402
    generate_corpus, SyntheticConfig)
from listener_head_ros.eval import report  # noqa: E402
from listener_head_ros.bags.reader import BagError, read_bag  # noqa: E402
from listener_head_ros.eval.offline import evaluate_offline, offline_listener  # noqa: E402
from listener_head_ros.eval.scoring import react_on_heads, score_trace  # noqa: E402
from listener_head_ros.eval.simulate import simulate_audio, simulate_node, Trace  # noqa: E402
from listener_head_ros.models.base import TranscriptEvent  # noqa: E402

TINY = SyntheticConfig(sessions=(1,), dialogs_per_session=1, turns_per_dialog=4)


@pytest.fixture(scope='module')
def bags(tmp_path_factory):
    """Return an MCAP and a sqlite3 bag of one synthetic dialog."""
    corpus = generate_corpus(tmp_path_factory.mktemp('corpus'), TINY, seed=5)
    out = tmp_path_factory.mktemp('bags')
    mcap = convert_corpus(corpus.root, out / 'mcap', (1,))[0].path
    sqlite = convert_corpus(corpus.root, out / 'sqlite', (1,),
                            config=BagConfig(storage='sqlite3'))[0].path
    return {'mcap': mcap, 'sqlite3': sqlite}


def copy_bag(src: Path, dst: Path, drop=(), retype=None, extra_speech=()) -> Path:
    """
    Copy a bag, leaving out the topics in ``drop``; ``retype`` makes a topic a String.

    ``extra_speech``: (ns, TranscriptEvent) written as more LiveSpeech messages.
    """
    from rosbags.highlevel import AnyReader
    store = listener_typestore()
    with AnyReader([src], default_typestore=store) as reader, Writer(
            dst, version=8, storage_plugin=StoragePlugin.MCAP) as writer:
        conns = {}
        for c in reader.connections:
            if c.topic in drop:
                continue
            msgtype = STRING if c.topic == retype else c.msgtype
            conns[c.id] = writer.add_connection(c.topic, msgtype, typestore=store,
                                                offered_qos_profiles=offered_qos())
        for c, ns, raw in reader.messages():
            if c.id not in conns:
                continue
            if c.topic == retype:
                raw = store.serialize_cdr(store.types[STRING](data='not audio'), STRING)
            writer.write(conns[c.id], ns, raw)
        speech = next(c for c in conns.values() if c.topic == TRANSCRIPT_TOPIC) if (
            extra_speech) else None
        for ns, event in extra_speech:
            writer.write(speech, ns, store.serialize_cdr(live_speech_message(store, ns, event),
                                                         LIVE_SPEECH))
    return dst


def text_checkpoint(directory: Path) -> Path:
    """Save a tiny causal GRU-MDN with seeded random weights that reads lexical text."""
    import torch
    from listener_head_ros.models.frame_features import FeatureConfig
    from listener_head_ros.models.frame_inputs import InputConfig
    from listener_head_ros.models.learned import save_learned_checkpoint
    from listener_head_ros.models.registry import build_network
    torch.manual_seed(0)
    inputs = InputConfig(text='lexical')
    network = build_network('causal_gru_mdn', {'input_dim': inputs.dim(FeatureConfig()),
                                               'hidden_size': 16, 'conv_channels': 8,
                                               'num_layers': 1})
    return save_learned_checkpoint(directory, network, inputs=inputs)


def recorded_contexts(listener) -> list:
    """Record the context of every model step of ``listener`` (the engine's calls)."""
    contexts, step = [], listener.model.step

    def recording(samples, context):
        contexts.append(context)
        return step(samples, context)

    listener.model.step = recording
    return contexts


def test_offline_scores_the_listener_turns(bags):
    """The embedded model is scored on every listener turn, with no frame dropped."""
    contents = read_bag(bags['mcap'])
    assert not contents.warnings
    result = evaluate_offline(contents)
    listener_turns = [t for t in contents.turns if t.is_listener_sample]
    assert result.head is not None
    assert result.head.n_utterances + sum(result.dropped_turns.values()) == len(listener_turns)
    assert result.trace.frames_dropped == 0
    heard = np.count_nonzero(contents.audio_stamps <= result.trace.times[-1] + 1e-9)
    assert result.trace.frames_stepped == heard * 512 // 533  # every hop heard by the last tick
    assert all(math.isfinite(v) for v in result.head.mae_deg.values())
    assert result.react['computed'] is False
    same = evaluate_offline(read_bag(bags['sqlite3']))  # sqlite3 gives the same answer
    assert same.head.mae_deg == result.head.mae_deg


def test_planted_truth_scores_perfectly_and_neutral_scores_the_baseline(bags):
    """A trace equal to the truth has MAE 0 and r 1; a neutral trace matches the baseline."""
    contents = read_bag(bags['mcap'])
    times = np.arange(contents.start + 0.05, contents.end - 0.05, 1 / 30)
    truth = np.stack([np.interp(times, contents.truth_times, contents.truth[:, a])
                      for a in range(3)], axis=1)
    perfect = score_trace('x', Trace(times, truth, [], 0, 0), contents)
    assert perfect.head.mae_mean_deg < 1e-9
    assert all(abs(r - 1.0) < 1e-9 for r in perfect.head.pearson.values())
    neutral = score_trace('x', Trace(times, np.zeros_like(truth), [], 0, 0), contents)
    assert neutral.head.mae_mean_deg == pytest.approx(neutral.baseline.mae_mean_deg)
    assert neutral.head.mae_mean_deg > 0.5


def test_react_on_multi_sample_traces(bags):
    """Several samples per frame give the REACT suite in both modes, on head angles."""
    contents = read_bag(bags['mcap'])
    times = np.arange(contents.start + 0.05, contents.end - 0.05, 1 / 30)
    truth = np.stack([np.interp(times, contents.truth_times, contents.truth[:, a])
                      for a in range(3)], axis=1)
    rng = np.random.default_rng(0)
    samples = truth[:, None, :] + 0.01 * rng.standard_normal((times.size, 4, 3))
    result = score_trace('x', Trace(times, samples[:, 0], [], 0, 0, samples), contents)
    react = result.react
    assert react['computed'] is True
    for mode in ('challenge', 'corrected'):
        assert react[mode]['n_samples'] == 4 and react[mode]['FRSyn'] is None
        assert react[mode]['FRC'] > 0.5 and react[mode]['FRDiv'] > 0.0
    assert react_on_heads(result.utterances, Trace(times, truth, [], 0, 0))['computed'] is False


def test_transcripts_reach_the_model_as_the_node_stamps_them(bags, tmp_path):
    """Each result is stamped with the audio stamped up to its bag time, as the node does."""
    contents = read_bag(bags['mcap'])
    assert contents.transcripts
    listener = offline_listener(model=str(text_checkpoint(tmp_path / 'text')), device='cpu',
                                transcripts=True)
    contexts = recorded_contexts(listener)
    trace = simulate_node(contents, listener)
    delivered = [(c.time, e) for c in contexts for e in c.transcripts]
    assert [e.text for _, e in delivered] == [e.text for _, e in contents.transcripts]
    rate = 16000
    for (bag_time, sent), (step_end, got) in zip(contents.transcripts, delivered):
        heard = np.count_nonzero(contents.audio_stamps <= bag_time) * 512 / rate
        assert got.time == pytest.approx(heard, abs=1e-9)  # the audio received by then
        assert (got.final, got.confidence) == (sent.final, sent.confidence)
        assert got.time <= step_end + 1e-9 < got.time + 533 / rate  # its first step
    silent = read_bag(bags['mcap'])
    silent.transcripts = []
    without = simulate_node(silent, listener)
    changed = np.abs(trace.poses - without.poses).max(axis=1) > 1e-6
    first = np.searchsorted(trace.times, contents.transcripts[0][0])
    assert not changed[:first].any() and changed[first:].any()


def test_simulate_audio_queues_results_at_their_stream_times(tmp_path):
    """Training's streaming path: a result reaches the first step whose hop ends after it."""
    listener = offline_listener(model=str(text_checkpoint(tmp_path / 'text')), device='cpu',
                                transcripts=True)
    contexts = recorded_contexts(listener)
    rng = np.random.default_rng(0)
    audio = (0.1 * rng.standard_normal(16000 * 3)).astype(np.float32)
    events = [TranscriptEvent(2.0, 'yes I see', final=True),
              TranscriptEvent(0.5, 'yes', final=False, confidence=0.5)]
    trace = simulate_audio(listener, audio, 16000, transcripts=events)
    delivered = {e.text: (c.time, e) for c in contexts for e in c.transcripts}
    assert len(delivered) == 2
    for event in events:
        step_end, got = delivered[event.text]
        assert got == event  # unchanged: its time is a stream time already
        assert event.time <= step_end + 1e-9 < event.time + 533 / 16000
    plain = simulate_audio(listener, audio, 16000)
    assert not np.allclose(trace.poses, plain.poses)


def test_transcripts_are_optional_and_malformed_ones_counted(bags, tmp_path):
    """No transcript topic: no results, no warning; empty or mistyped ones are counted."""
    older = read_bag(copy_bag(bags['mcap'], tmp_path / 'older', drop=(TRANSCRIPT_TOPIC,)))
    assert older.transcripts == [] and not older.warnings
    contents = read_bag(bags['mcap'])
    ns = int(round(contents.start * 1e9)) + 10 ** 9
    empty = [(ns, TranscriptEvent(0.0, '  ', final=True)),
             (ns + 1, TranscriptEvent(0.0, '', final=False))]
    padded = read_bag(copy_bag(bags['mcap'], tmp_path / 'empty', extra_speech=empty))
    assert len(padded.transcripts) == len(contents.transcripts)
    assert any('ignored 2 transcript message(s)' in w for w in padded.warnings)
    mistyped = read_bag(copy_bag(bags['mcap'], tmp_path / 'mistyped', retype=TRANSCRIPT_TOPIC))
    assert mistyped.transcripts == []
    assert any(f'topic {TRANSCRIPT_TOPIC} has type std_msgs/msg/String' in w
               for w in mistyped.warnings)


def test_bag_without_audio_info_falls_back_to_the_node_defaults(bags, tmp_path):
    """No AudioInfo: a warning, and the node's input.* defaults (S16LE 16 kHz mono) decode."""
    bag = copy_bag(bags['mcap'], tmp_path / 'no_info', drop=(AUDIO_INFO_TOPIC,))
    contents = read_bag(bag)
    assert contents.audio_format is None
    assert any('no AudioInfo' in w for w in contents.warnings)
    assert (evaluate_offline(contents).head.mae_deg
            == evaluate_offline(read_bag(bags['mcap'])).head.mae_deg)


def test_wrong_audio_type_is_refused_clearly(bags, tmp_path):
    """An audio topic of another type is named, with the expected type."""
    bag = copy_bag(bags['mcap'], tmp_path / 'wrong', retype=AUDIO_TOPIC)
    with pytest.raises(BagError, match='has type std_msgs/msg/String, expected '
                                       'audio_common_msgs/msg/AudioData'):
        read_bag(bag)
    with pytest.raises(BagError, match='no audio topic'):
        read_bag(copy_bag(bags['mcap'], tmp_path / 'none', drop=(AUDIO_TOPIC,)))


@pytest.mark.parametrize('storage', ['mcap', 'sqlite3'])
def test_truncated_bag_is_refused_clearly(bags, tmp_path, storage):
    """A bag whose storage file was cut gives a BagError that says so, never a crash."""
    import shutil
    bag = shutil.copytree(bags[storage], tmp_path / 'cut')
    data = next(p for p in bag.iterdir() if p.suffix in ('.mcap', '.db3'))
    size = data.stat().st_size
    with open(data, 'r+b') as handle:
        handle.truncate(size // 2)
    with pytest.raises(BagError, match='truncated or corrupt'):
        read_bag(bag)
    with pytest.raises(BagError, match='does not exist'):
        read_bag(tmp_path / 'missing')


def test_report_files_and_plots(bags, tmp_path, capsys):
    """The CLI writes metrics.json, summary.md and four readable PNG plots."""
    out = tmp_path / 'report'
    assert report.main([str(bags['mcap']), '--mode', 'offline', '--out', str(out),
                        '--mcap-out', str(tmp_path / 'pred')]) == 0
    data = json.loads((out / 'metrics.json').read_text())
    assert data['offline']['head']['n_utterances'] >= 1
    assert data['offline']['frames_dropped'] == 0
    summary = (out / 'summary.md').read_text()
    assert '| MAE mean (deg) |' in summary and 'REACT' in summary
    import matplotlib.pyplot as plt
    for name in report.PLOTS:
        image = plt.imread(out / name)
        assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
        assert np.ptp(image) > 0  # not blank
    predicted = read_bag(tmp_path / 'pred')  # the copy still evaluates ...
    assert len(predicted.audio_payloads) == len(read_bag(bags['mcap']).audio_payloads)
    from rosbags.highlevel import AnyReader
    with AnyReader([tmp_path / 'pred'], default_typestore=listener_typestore()) as reader:
        assert reader.topics['/listener/head_pose'].msgcount == data['offline']['poses']
        assert reader.topics[TRUTH_TOPIC].msgcount > 0
    assert report.main([str(tmp_path / 'nothing'), '--mode', 'offline', '--out',
                        str(tmp_path / 'r2')]) == 2
    assert 'does not exist' in capsys.readouterr().err


def test_a_bag_damaged_in_place_is_refused_not_scored(bags, tmp_path):
    """4 KB overwritten inside the MCAP: refused with a reason, whatever the reader skipped."""
    import shutil
    original = next(bags['mcap'].glob('*.mcap'))
    reasons = []
    for k, fraction in enumerate((0.25, 0.33, 0.5, 0.66)):
        damaged = tmp_path / f'damaged{k}'
        shutil.copytree(bags['mcap'], damaged)
        storage = damaged / original.name
        with open(storage, 'r+b') as handle:
            handle.seek(int(storage.stat().st_size * fraction))
            handle.write(np.random.default_rng(k).bytes(4096))
        with pytest.raises(BagError) as refused:
            read_bag(damaged)
        reasons.append(str(refused.value))
    assert all('damaged' in r or 'corrupt' in r for r in reasons), reasons
    assert any('metadata.yaml lists on /audio/audio' in r for r in reasons), reasons


def test_a_bag_without_metadata_says_so_and_how_to_fix_it(bags, tmp_path):
    """No metadata.yaml: the message names the file and ros2 bag reindex."""
    import shutil
    bag = tmp_path / 'no_metadata'
    shutil.copytree(bags['mcap'], bag)
    (bag / 'metadata.yaml').unlink()
    with pytest.raises(BagError, match=r'has no metadata.yaml .*ros2 bag reindex'):
        read_bag(bag)


def test_warnings_come_before_the_work_and_plots_stay_clean(bags, tmp_path, monkeypatch):
    """A bag without truth warns before evaluating; its report has no empty-axes plot."""
    import warnings
    bag = copy_bag(bags['mcap'], tmp_path / 'no_truth', drop=(TRUTH_TOPIC,))
    events = []
    original = report.evaluate_offline
    monkeypatch.setattr(report, 'evaluate_offline',
                        lambda *a, **k: events.append('evaluated') or original(*a, **k))
    run = report.evaluate_bag(bag, mode='offline', show_progress=False,
                              warn=lambda text: events.append(text))
    assert 'nothing can be scored' in events[0] and events[-1] == 'evaluated'
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        out = report.write_report(run, tmp_path / 'report')
    assert (out / 'errors.png').stat().st_size > 1000
