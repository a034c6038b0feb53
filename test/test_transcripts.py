"""Transcripts: .wdseg parsing, the simulated live recogniser and IEMOCAP's transcript streams."""

from dataclasses import replace
import shutil

import pytest

from listener_head_ros.data.iemocap import IemocapConfig, IemocapSource
from listener_head_ros.data.source import INTERLOCUTOR
from listener_head_ros.data.synthetic_iemocap import generate_corpus, SyntheticConfig
from listener_head_ros.data.transcripts import (
    event_from_dict, event_to_dict, is_word, parse_wdseg, RecognitionConfig,
    simulate_recognition, TimedWord)
from listener_head_ros.models.base import TranscriptEvent

SESSIONS = (1, 2)
SMALL = SyntheticConfig(sessions=SESSIONS, dialogs_per_session=2, turns_per_dialog=4)
WDSEG = """ SFrm  EFrm    SegAScr Word
    0    32     -25434 <s>
   33    61     -38187 EXCUSE
   62    70     -10512 ME(2)
   71    90      -9000 <sil>
   91    99      -4000 ++BREATH++
  100   129     -31000 PLEASE
  130   139      -2000 [NOISE]
  140   159      -9000 </s>
 Total score:    -129133
 End of file
"""


@pytest.fixture(scope='module')
def corpus(tmp_path_factory):
    """Generate a small two-session corpus once."""
    return generate_corpus(tmp_path_factory.mktemp('corpus'), SMALL, seed=11)


def test_parse_wdseg_words_markers_and_fillers(tmp_path):
    """Words are lower-cased without markers; silences and fillers are no words."""
    path = tmp_path / 'u.wdseg'
    path.write_text(WDSEG, encoding='utf-8')
    words, bad = parse_wdseg(path, offset=2.0)
    assert bad == 0
    assert [w.text for w in words] == ['excuse', 'me', 'please']
    assert words[0].start == pytest.approx(2.33) and words[0].end == pytest.approx(2.62)
    assert words[1].end == pytest.approx(2.71) and words[2].end == pytest.approx(3.30)
    assert not any(is_word(t) for t in ('<s>', '</s>', '<sil>', '++BREATH++', '[NOISE]', ''))


def test_parse_wdseg_counts_bad_lines(tmp_path):
    """Lines that do not parse, or with a last frame before the first, are counted."""
    path = tmp_path / 'bad.wdseg'
    path.write_text(WDSEG.replace('   62    70     -10512 ME(2)', '   62    xx     -1 ME')
                    + '   80    70       -1 BACKWARDS\nnot a row\n   5 6 WORD\n',
                    encoding='utf-8')
    words, bad = parse_wdseg(path)
    assert bad == 4 and [w.text for w in words] == ['excuse', 'please']


def test_simulate_recognition_is_causal():
    """Each result comes latency after the end of the words it holds; the final one last."""
    words = [TimedWord('excuse', 1.0, 1.3), TimedWord('me', 1.3, 1.5),
             TimedWord('please', 1.6, 2.0)]
    config = RecognitionConfig(latency=0.25)
    events = simulate_recognition('Excuse me, please. ', 0.8, 2.2, words, config)
    assert [e.final for e in events] == [False, False, False, True]
    assert [e.text for e in events] == ['excuse', 'excuse me', 'excuse me please',
                                        'Excuse me, please.']
    for k, event in enumerate(events[:-1]):
        assert event.time >= words[k].end + config.latency - 1e-12
        assert event.end == words[k].end and event.start == 0.8
    assert events[-1].time == pytest.approx(2.45) and events[-1].end == 2.2
    times = [e.time for e in events]
    assert times == sorted(times)
    # words past the transcribed end: the final result never comes before the last partial
    late = simulate_recognition('x', 0.0, 1.0, [TimedWord('x', 0.5, 1.4)], config)
    assert late[-1].time >= late[0].time


def test_simulate_recognition_final_only():
    """Without word times, or without incremental results, only the final result exists."""
    for events in (simulate_recognition('Hello.', 1.0, 2.0),
                   simulate_recognition('Hello.', 1.0, 2.0, [TimedWord('hello', 1.0, 1.8)],
                                        RecognitionConfig(0.3, incremental=False))):
        assert len(events) == 1 and events[0].final and events[0].time == pytest.approx(2.3)
    with pytest.raises(ValueError):
        RecognitionConfig(latency=-0.1)


def test_event_dict_round_trip():
    """An event survives JSON-ready dicts; older dicts default final and confidence."""
    event = TranscriptEvent(1.5, 'so', False, 1.0, 1.2, 0.9)
    assert event_from_dict(event_to_dict(event)) == event
    assert event_from_dict({'time': 2, 'text': 'x'}) == TranscriptEvent(2.0, 'x')


def _interlocutor_turns(stream):
    return [t for t in stream.turns if t.role == INTERLOCUTOR]


def test_iemocap_transcripts_follow_the_alignments(corpus):
    """The source's transcripts are the interlocutor's turns, word by word, after latency."""
    source = IemocapSource(corpus.root, sessions=SESSIONS)
    streams = list(source.dialogs())
    total = source.preparation.total()
    assert total.aligned == sum(len(_interlocutor_turns(s)) for s in streams) > 0
    assert total.unaligned == total.bad_alignments == 0
    assert 'aligned' in source.summary_table()
    for stream in streams:
        truth = corpus.dialog(stream.dialog_id)
        heard = truth.heard_words()
        partial = [e for e in stream.transcripts if not e.final]
        finals = [e for e in stream.transcripts if e.final]
        assert len(partial) == len(heard) and len(finals) == len(_interlocutor_turns(stream))
        times = [e.time for e in stream.transcripts]
        assert times == sorted(times)
        # the generated alignment's times are read back exactly
        assert sorted(e.end for e in partial) == sorted(w.end for w in heard)
        for event in partial:
            assert event.time == pytest.approx(event.end + 0.3)
            assert event.text.split()[-1] in {w.text for w in heard}
        texts = {t.meta['text'] for t in _interlocutor_turns(stream)}
        assert {e.text for e in finals} == texts
        for turn, final in zip(_interlocutor_turns(stream), finals):
            assert final.time == pytest.approx(turn.end + 0.3) and final.start == turn.start


def test_iemocap_transcripts_without_or_with_corrupt_alignments(corpus, tmp_path):
    """A missing alignment gives the final result only, a corrupt one is counted too."""
    root = tmp_path / 'IEMOCAP_full_release'
    shutil.copytree(corpus.root, root)
    dialog = corpus.dialogs[0]
    folder = root / 'Session1' / 'sentences' / 'ForcedAlignment' / dialog.name
    heard = [u.utterance_id for u in dialog.listener_utterances()]
    (folder / f'{heard[0]}.wdseg').unlink()
    (folder / f'{heard[1]}.wdseg').write_text(' SFrm  EFrm    SegAScr Word\n garbage\n',
                                              encoding='utf-8')
    shutil.rmtree(root / 'Session1' / 'sentences' / 'ForcedAlignment' / corpus.dialogs[1].name)
    source = IemocapSource(root, sessions=(1,))
    streams = {s.dialog_id: s for s in source.dialogs()}
    stats = source.preparation.total()
    other = len(corpus.dialogs[1].listener_utterances())
    assert stats.unaligned == 1 + other and stats.bad_alignments == 1
    assert stats.aligned == len(heard) - 2
    table = source.summary_table().splitlines()
    assert table[0].split()[9:12] == ['aligned', 'no_align', 'bad_align']
    assert table[-1].split()[9:12] == [str(stats.aligned), str(stats.unaligned), '1']
    first = streams[dialog.name]
    for turn in _interlocutor_turns(first)[:2]:
        mine = [e for e in first.transcripts if e.start == turn.start]
        assert len(mine) == 1 and mine[0].final
    assert all(e.final for e in streams[corpus.dialogs[1].name].transcripts)


def test_recognition_settings_are_part_of_the_identity(corpus):
    """Another latency or incremental setting changes describe() (a cache is redone)."""
    base = IemocapSource(corpus.root, sessions=SESSIONS)
    later = IemocapSource(corpus.root, IemocapConfig(asr_latency=0.5), sessions=SESSIONS)
    finals = IemocapSource(corpus.root, IemocapConfig(incremental_asr=False), sessions=(1,))
    assert base.describe() != later.describe() != finals.describe()
    assert base.describe()['config']['asr_latency'] == 0.3
    assert all(e.final for s in finals.dialogs() for e in s.transcripts)
    early = next(iter(base.dialogs())).transcripts[0]
    late = next(iter(later.dialogs())).transcripts[0]
    assert late.time == pytest.approx(early.time + 0.2)
    with pytest.raises(ValueError):
        IemocapConfig(asr_latency=float('nan'))


def test_speaking_role_hears_the_interlocutor_too(corpus):
    """In the speaking role, the transcripts are still the interlocutor's words."""
    source = IemocapSource(corpus.root, replace(IemocapConfig(), role='speaker'), (1,))
    for stream in source.dialogs():
        truth = corpus.dialog(stream.dialog_id)
        assert sum(not e.final for e in stream.transcripts) == len(truth.heard_words())
        assert {e.start for e in stream.transcripts} == {
            t.start for t in stream.turns if t.role == INTERLOCUTOR}
    assert source.preparation.total().aligned == sum(
        len(d.listener_utterances()) for d in corpus.dialogs if d.session == 1)
