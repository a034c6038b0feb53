"""The text-planted synthetic IEMOCAP corpus: words, alignments, timing and its floors."""

from dataclasses import replace
import hashlib
import json
import time

import numpy as np
import pytest

from listener_head_ros.data.iemocap import IemocapSource, TEXT_FLOORS_FILE
from listener_head_ros.data.synthetic_iemocap import (
    bayes_floor_mae_deg, generate_corpus, main, PlantedResponse, SyntheticConfig, TEXT_SMALL,
    text_driven_mask, text_floors, text_mask, text_predictions, VOCABULARY)
from listener_head_ros.data.transcripts import parse_wdseg
from listener_head_ros.models.base import SideInputs

HOP, SR = 533, 16000
FRAME = HOP / SR


@pytest.fixture(scope='module')
def corpus(tmp_path_factory):
    """Generate the TEXT_SMALL preset once (it must take seconds)."""
    began = time.perf_counter()
    corpus = generate_corpus(tmp_path_factory.mktemp('text'), TEXT_SMALL, seed=0)
    assert time.perf_counter() - began < 10.0
    return corpus


@pytest.fixture(scope='module')
def streams(corpus):
    """Parse the corpus once through the IEMOCAP source."""
    source = IemocapSource(corpus.root, sessions=TEXT_SMALL.sessions)
    return {s.dialog_id: s for s in source.dialogs()}, source


def test_alignments_hold_the_truth_words_exactly(corpus):
    """Each utterance's .wdseg reads back as its words, on the 10 ms grid, in its span."""
    vocabulary = {w for words in VOCABULARY.values() for w in words} | set(
        TEXT_SMALL.trigger_words)
    markers = 0
    for truth in corpus.dialogs:
        folder = corpus.root / f'Session{truth.session}' / 'sentences' / 'ForcedAlignment'
        for u in truth.utterances:
            path = folder / truth.name / f'{u.utterance_id}.wdseg'
            words, bad = parse_wdseg(path, float(f'{u.start:.4f}'))
            assert bad == 0 and tuple(words) == u.words and u.words
            assert {w.text for w in words} <= vocabulary
            assert u.start < words[0].start and words[-1].end < u.end
            for w in words:
                assert abs(round((w.start - u.start) * 100) - (w.start - u.start) * 100) < 1e-6
            text = path.read_text(encoding='utf-8')
            assert text.startswith(' SFrm  EFrm    SegAScr Word\n    0 ')
            assert text.endswith('End of file\n') and '</s>' in text and 'Total score:' in text
            markers += '(2)' in text
    assert markers > 0


def test_audio_is_the_same_whatever_the_words(tmp_path):
    """The words come from their own stream: trigger rate 0 or 1, the wavs are identical."""
    config = replace(TEXT_SMALL, sessions=(1,), dialogs_per_session=1, turns_per_dialog=3)
    digests = []
    for rate in (0.0, 1.0):
        corpus = generate_corpus(tmp_path / str(rate), replace(config, trigger_rate=rate), 4)
        wav = corpus.root / 'Session1' / 'dialog' / 'wav' / f'{corpus.dialogs[0].name}.wav'
        digests.append(hashlib.sha256(wav.read_bytes()).hexdigest())
        words = [w.text for w in corpus.dialogs[0].heard_words()]
        assert all((w in config.trigger_words) == bool(rate) for w in words)
    assert digests[0] == digests[1]


def test_response_starts_a_lag_after_the_recognition_arrives(corpus, streams):
    """The planted text movement starts lag after the frame that delivers the trigger word."""
    by_id, _ = streams
    for truth in corpus.dialogs:
        stream = by_id[truth.name]
        contexts = SideInputs(stream.transcripts).contexts(stream.n_frames, FRAME)
        arrived = {}  # word end -> frame end at which its incremental result arrives
        for context in contexts:
            for event in context.transcripts:
                if not event.final:
                    arrived.setdefault(round(event.end, 6), context.time)
        triggers = [w for w in truth.heard_words() if w.text in truth.trigger_words]
        assert triggers
        for word in triggers:
            assert truth.recognised_at(word) == pytest.approx(arrived[round(word.end, 6)])
            assert truth.recognised_at(word) >= word.end + TEXT_SMALL.asr_latency - 1e-9
        t = FRAME * np.arange(1, stream.n_frames + 1)
        text_part = (truth.deterministic_deg(t, relative=True)
                     - replace(truth, text_responses=()).deterministic_deg(t, relative=True))
        moving = np.flatnonzero(np.any(text_part != 0.0, axis=1))
        starts = np.array([truth.recognised_at(w) for w in triggers])
        for i in moving:  # every moving frame follows a delivered trigger by at least the lag
            assert np.any((starts + 0.1 < t[i] + 1e-9) & (t[i] < starts + 0.9 + 1e-9))


def test_floors_written_and_passed_on(corpus, streams):
    """The text floors are in their file, in the source's floors and equal text_floors()."""
    _, source = streams
    floors = json.loads((corpus.root / TEXT_FLOORS_FILE).read_text(encoding='utf-8'))
    assert floors == corpus.text_floors == text_floors(corpus)
    assert source.floors()['text'] == floors and source.floors() == corpus.reference_floors()
    oracle, audio = floors['text_floor']['mean'], floors['audio_only']['mean']
    assert oracle == pytest.approx(bayes_floor_mae_deg(TEXT_SMALL)[1], rel=0.01)
    assert audio >= 1.5 * oracle
    assert floors['audio_only']['roll'] == pytest.approx(floors['text_floor']['roll'])
    assert floors['frames'] > 1000 and set(floors['dialogs']) == {d.name for d in corpus.dialogs}


def test_mask_and_predictions_on_the_parsed_heads(corpus, streams):
    """On the text-driven frames the oracle reaches the floor and the blind predictor not."""
    by_id, _ = streams
    rate = SR / HOP
    oracle_err, blind_err, mask_frames = [], [], 0
    for truth in corpus.dialogs:
        stream = by_id[truth.name]
        mask = text_driven_mask(truth, stream.n_frames, rate)
        np.testing.assert_array_equal(mask, text_mask(corpus.text_floors, truth.name,
                                                      stream.n_frames))
        assert not mask[~stream.window].any()  # the responses stay in the listening windows
        oracle, blind = text_predictions(truth, TEXT_SMALL)
        head = np.rad2deg(stream.targets['head'])
        np.testing.assert_allclose(oracle[~mask], blind[~mask])
        oracle_err.append(np.abs(head - oracle)[mask])
        blind_err.append(np.abs(head - blind)[mask])
        mask_frames += int(mask.sum())
    floors = corpus.text_floors
    assert mask_frames == floors['frames']
    oracle_mae = np.concatenate(oracle_err).mean(axis=0).mean()
    blind_mae = np.concatenate(blind_err).mean(axis=0).mean()
    assert oracle_mae == pytest.approx(floors['text_floor']['mean'], rel=0.1)
    assert blind_mae == pytest.approx(floors['audio_only']['mean'], rel=0.15)
    assert blind_mae > 1.5 * oracle_mae


def test_default_corpus_has_no_text_relation(tmp_path):
    """Off by default: no text floors, no text mask, floors as before."""
    corpus = generate_corpus(tmp_path, SyntheticConfig(sessions=(1, 2), dialogs_per_session=1,
                                                       turns_per_dialog=3), seed=2)
    assert corpus.text_floors is None and not (corpus.root / TEXT_FLOORS_FILE).exists()
    assert 'text' not in IemocapSource(corpus.root, sessions=(1, 2)).floors()
    truth = corpus.dialogs[0]
    assert not text_driven_mask(truth, truth.n_frames, SR / HOP).any()


def test_text_relation_settings_are_checked():
    """A response that outlasts the pause, or bad trigger words, are refused."""
    with pytest.raises(ValueError, match='text response'):
        replace(TEXT_SMALL, text_responses=(PlantedResponse('pitch', 'trigger_word', 0.5,
                                                            1.0, -5.0),))
    with pytest.raises(ValueError, match='bad planted text response'):
        replace(TEXT_SMALL, text_responses=(PlantedResponse('pitch', 'phrase_end', 0.1,
                                                            0.5, -5.0),))
    with pytest.raises(ValueError, match='trigger_words'):
        replace(TEXT_SMALL, trigger_words=('so', 'really', 'exactly'))
    with pytest.raises(ValueError, match='trigger_rate'):
        replace(TEXT_SMALL, trigger_rate=1.5)


def test_generator_cli_preset(tmp_path, capsys):
    """The command line writes the text preset and prints its text floors."""
    assert main([str(tmp_path), '--preset', 'text_small', '--dialogs-per-session', '1',
                 '--turns-per-dialog', '3']) == 0
    out = capsys.readouterr().out
    assert 'text-driven frames' in out and 'best audio-only MAE' in out
    assert (tmp_path / 'IEMOCAP_full_release' / TEXT_FLOORS_FILE).is_file()
