"""Listening windows, the dialog-stream contract, splits, and IEMOCAP as dialog streams."""

import json

import numpy as np
import pytest

from listener_head_ros.data.iemocap import (
    DEFAULT_SPEAKER_CHANNEL, FLOORS_FILE, IemocapConfig, IemocapSource,
    iter_listener_samples)
from listener_head_ros.data.source import (
    DialogStream, FIXED, INTERLOCUTOR, LEAVE_ONE_GROUP_OUT, LISTENER, SplitScheme, Turn)
from listener_head_ros.data.synthetic_iemocap import generate_corpus, SyntheticConfig
from listener_head_ros.data.windows import (
    DEFAULT_TAIL_SECONDS, figure_frames, frame_span, listening_segments, segment_masks)

SR, HOP = 16000, 533
TINY = SyntheticConfig(sessions=(1, 2), dialogs_per_session=2, turns_per_dialog=5)


@pytest.fixture(scope='module')
def corpus(tmp_path_factory):
    """Generate a two-session corpus once."""
    return generate_corpus(tmp_path_factory.mktemp('windows'), TINY, seed=11)


@pytest.fixture(scope='module')
def streams(corpus):
    """Return the dialog streams of the corpus and the source that made them."""
    source = IemocapSource(corpus.root, sessions=TINY.sessions)
    return list(source.dialogs()), source


def _turn(uid, role, start, end):
    return Turn(uid, 'F' if role == INTERLOCUTOR else 'M', role, start, end)


def test_frame_span_is_frames_ending_inside():
    """Frame i ends at (i + 1) hop: the span (start, end] holds frames s0 // hop .. s1 // hop."""
    first, stop = frame_span(1.0, 2.0, SR, HOP, 1000)
    assert (first, stop) == (16000 // HOP, 32000 // HOP)
    ends = (np.arange(first, stop) + 1) * HOP / SR
    assert ends[0] > 1.0 and ends[-1] <= 2.0 and (stop + 1) * HOP / SR > 2.0
    assert frame_span(1.0, 2.0, SR, HOP, 40) == (30, 40)  # clipped to the stream


def test_window_tail_is_cut_where_another_turn_takes_over():
    """Tail up to tail_seconds, cut at the next turn's start or at once by an ongoing turn."""
    turns = [_turn('a', INTERLOCUTOR, 1.0, 3.0),  # listener answers 0.5 s later: cut there
             _turn('b', LISTENER, 3.5, 6.0),
             _turn('c', INTERLOCUTOR, 7.0, 9.0),  # nobody follows: the full 2 s tail
             _turn('d', INTERLOCUTOR, 12.0, 14.0),  # the listener already talks at its end
             _turn('e', LISTENER, 13.5, 15.0),
             _turn('f', LISTENER, 16.0, 16.2),  # a backchannel inside g does not cut g's tail
             _turn('g', INTERLOCUTOR, 15.9, 18.0),
             _turn('h', INTERLOCUTOR, 18.1, 18.3)]  # too short; g's tail ends where h starts
    segments = listening_segments(turns, 2000, SR, HOP, tail_seconds=2.0, min_seconds=0.5)
    by_id = {s.utterance_id: s for s in segments}
    assert list(by_id) == ['a', 'c', 'd', 'g', 'h']  # interlocutor turns only
    for uid, window_end in (('a', 3.5), ('c', 11.0), ('d', 14.0), ('g', 18.1)):
        assert by_id[uid].window_end == frame_span(0.0, window_end, SR, HOP, 2000)[1], uid
        assert by_id[uid].end == frame_span(0.0, turns[ord(uid) - 97].end, SR, HOP, 2000)[1]
    assert by_id['d'].window_end == by_id['d'].end  # no tail
    assert [s.excluded for s in segments] == ['', '', '', '', 'too_short']
    utterance, window = segment_masks(segments, 2000)
    assert not (utterance & ~window).any() and window.sum() > utterance.sum()
    for s in segments:
        assert figure_frames(s, 'window') == slice(s.start, s.window_end)
        assert figure_frames(s, 'tail').start == figure_frames(s, 'protocol').stop == s.end
    spans = sorted((s.start, s.window_end) for s in segments)
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))  # windows never overlap
    beyond = listening_segments([_turn('x', INTERLOCUTOR, 1.0, 3.0)], 40, SR, HOP)
    assert beyond[0].excluded == 'outside_audio'
    with pytest.raises(ValueError, match='figure'):
        figure_frames(segments[0], 'everything')


def test_split_schemes():
    """Leave-one-group-out holds out each group; a fixed split trains on train, tests test."""
    logo = SplitScheme(LEAVE_ONE_GROUP_OUT, ('1', '2', '3'))
    assert [(f.name, f.train, f.test) for f in logo.folds()] == [
        ('1', ('2', '3'), ('1',)), ('2', ('1', '3'), ('2',)), ('3', ('1', '2'), ('3',))]
    assert [f.name for f in logo.folds(['3'])] == ['3'] and logo.final_groups == ('1', '2', '3')
    assert logo.restrict(['1', '3']).groups == ('1', '3')
    with pytest.raises(ValueError, match='not among'):
        logo.folds(['4'])
    with pytest.raises(ValueError, match='at least two'):
        SplitScheme(LEAVE_ONE_GROUP_OUT, ('1',)).folds()
    fixed = SplitScheme(FIXED, ('train', 'val', 'test'))
    folds = [(f.name, f.train, f.test) for f in fixed.folds()]
    assert folds == [('test', ('train',), ('test',))]
    assert fixed.final_groups == ('train', 'val')
    assert SplitScheme.from_dict(fixed.to_dict()) == fixed
    with pytest.raises(ValueError, match='fixed split'):
        SplitScheme(FIXED, ('train', 'dev'))
    with pytest.raises(ValueError, match="one fold 'test'"):
        fixed.folds(['val'])


def test_dialog_stream_checks_shapes():
    """A stream's targets and masks must have one row per complete hop, dims from streams."""
    n = 10
    good = dict(dialog_id='d', group='train', audio=np.zeros(n * HOP + 7, np.float32),
                sample_rate=SR, hop_length=HOP, targets={'head': np.zeros((n, 3), np.float32)},
                valid={'head': np.ones(n, bool)}, utterance=np.zeros(n, bool),
                window=np.zeros(n, bool), segments=[], turns=[])
    assert DialogStream(**good).n_frames == n
    with pytest.raises(ValueError, match='expected'):
        DialogStream(**{**good, 'targets': {'head': np.zeros((n, 25), np.float32)}})
    with pytest.raises(ValueError, match='name different streams'):
        DialogStream(**{**good, 'valid': {}})
    with pytest.raises(ValueError, match='unknown stream'):
        DialogStream(**{**good, 'targets': {'hed': np.zeros((n, 3))}, 'valid': {'hed': None}})


def test_iemocap_streams_cover_whole_dialogs(corpus, streams):
    """One stream per dialog: the interlocutor's whole channel, the head at every frame."""
    got, source = streams
    assert [s.dialog_id for s in got] == source.dialog_ids() == [d.name for d in corpus.dialogs]
    assert source.split == SplitScheme(LEAVE_ONE_GROUP_OUT, ('1', '2'))
    assert source.targets == ('head',) and source.floors() == corpus.reference_floors()
    for stream in got:
        truth = corpus.dialog(stream.dialog_id)
        assert stream.group == str(truth.session) and stream.meta['listener'] == truth.wearer
        assert stream.n_frames == stream.audio.size // HOP and stream.audio.size % HOP == 0
        valid = stream.valid['head']
        assert valid.mean() > 0.95 and np.all(stream.targets['head'][~valid] == 0.0)
        t = HOP * np.arange(1, stream.n_frames + 1) / SR
        planted = truth.deterministic_deg(t, relative=True)
        error = np.abs(np.rad2deg(stream.targets['head'][valid]) - planted[valid])
        assert error.mean() < 1.5 * corpus.floor_mae_deg  # the planted motion plus noise
        listened = [u.utterance_id for u in truth.listener_utterances()]
        assert [s.utterance_id for s in stream.segments] == listened
        assert {t.role for t in stream.turns} == {INTERLOCUTOR, LISTENER}
    samples = list(iter_listener_samples(corpus.root, TINY.sessions))
    counted = [(s.dialog, s.utterance_id) for s in samples]
    assert counted == [(st.dialog_id, seg.utterance_id) for st in got
                       for seg in st.segments if not seg.excluded]
    assert source.report()['1']['utterances'] + source.report()['2']['utterances'] == len(
        samples)


def test_post_utterance_nod_lies_in_the_window_tails(corpus, streams):
    """The planted post-utterance nod is outside every utterance and inside the windows."""
    got, _ = streams
    nod = next(r for r in corpus.config.responses if r.trigger == 'utterance_end')
    assert nod.axis == 'pitch'
    for stream in got:
        truth = corpus.dialog(stream.dialog_id)
        t = HOP * np.arange(1, stream.n_frames + 1) / SR
        for u, seg in zip(truth.listener_utterances(), stream.segments):
            moving = (t > u.end + nod.lag_seconds) & (t < u.end + nod.lag_seconds + nod.seconds)
            assert moving.any() and not stream.utterance[moving].any()
            assert np.all(np.flatnonzero(moving) < seg.window_end)
            assert np.all(np.flatnonzero(moving) >= seg.end)
    neutral = corpus.neutral_mae_deg
    assert set(neutral) == {'protocol', 'window', 'tail'} and neutral['tail'] > 1.5 * (
        corpus.floor_mae_deg)
    floors = json.loads((corpus.root / FLOORS_FILE).read_text())
    assert floors == corpus.reference_floors()
    assert floors['streams']['head']['floor']['window']['mean'] == corpus.floor_mae_deg


def test_one_default_audio_channel_for_training_and_bags():
    """Preparation and bag conversion hear the interlocutor's channel by default."""
    convert = pytest.importorskip('listener_head_ros.bags.convert')
    assert DEFAULT_SPEAKER_CHANNEL == 'speaker'
    assert IemocapConfig().speaker_channel == convert.BagConfig().iemocap.speaker_channel
    assert IemocapConfig().tail_seconds == DEFAULT_TAIL_SECONDS
