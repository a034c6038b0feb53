"""IEMOCAP parser end to end on a synthetic corpus in the release layout."""

import math
from pathlib import Path
import shutil

import numpy as np
import pytest

from listener_head_ros.data.iemocap import (
    find_dialogs, HeadTrack, IemocapConfig, iter_dialog_samples, iter_listener_samples,
    parse_emo_evaluation, parse_transcription, parse_utterance_id, PreparationReport,
    read_mocap_head)
from listener_head_ros.data.synthetic_iemocap import (
    bayes_floor_mae_deg, generate_corpus, interpolation_factor, main, SyntheticConfig)

HOP, SR = 533, 16000
TINY = SyntheticConfig(dialogs_per_session=4, turns_per_dialog=5)


@pytest.fixture(scope='module')
def corpus(tmp_path_factory):
    """Generate the tiny synthetic corpus once for this module."""
    return generate_corpus(tmp_path_factory.mktemp('iemocap'), TINY, seed=7)


@pytest.fixture(scope='module')
def parsed(corpus):
    """Parse the corpus once: the listener samples and the report."""
    report = PreparationReport()
    samples = list(iter_listener_samples(corpus.root.parent, config=IemocapConfig(),
                                         report=report))
    return samples, report


def _frame_times(sample):
    return sample.start + np.arange(1, sample.head.shape[0] + 1) * HOP / SR


def _gap_owner(dialog, row, fps=120.0):
    return next(u for u in dialog.listener_utterances() if u.start <= row / fps <= u.end)


def test_layout_and_mocap_alias(corpus):
    """Session 5 has the release's wav/mocap naming exception, resolved by the alias table."""
    base = corpus.root / 'Session5' / 'dialog'
    assert (base / 'wav' / 'Ses05M_script01_1b.wav').is_file()
    assert (base / 'MOCAP_head' / 'Ses05M_script01_1.txt').is_file()
    assert not (base / 'MOCAP_head' / 'Ses05M_script01_1b.txt').exists()
    dialog = next(d for d in find_dialogs(corpus.root, [5]) if d.name == 'Ses05M_script01_1b')
    assert dialog.mocap.name == 'Ses05M_script01_1.txt' and dialog.wearer == 'M'
    assert dialog.wav is not None and dialog.emo_evaluation is not None


def test_counts_roles_and_drops(corpus, parsed):
    """Listener samples are the other actor's turns, minus those with long NaN gaps."""
    samples, report = parsed
    fps = TINY.mocap_fps
    for session in TINY.sessions:
        dialogs = [d for d in corpus.dialogs if d.session == session]
        dropped = {_gap_owner(d, row).utterance_id for d in dialogs for row, rows in d.gaps
                   if rows / fps > 0.25}
        expected = [u.utterance_id for d in dialogs for u in d.listener_utterances()
                    if u.utterance_id not in dropped]
        got = [s for s in samples if s.session == session]
        assert sorted(s.utterance_id for s in got) == sorted(expected)
        stats = report.sessions[session]
        assert stats.utterances == len(expected) and stats.dialogs == len(dialogs)
        assert stats.dropped == ({'nan_gap': len(dropped)} if dropped else {})
        assert stats.skipped_lines == sum(d.skipped_lines for d in dialogs)
        assert stats.utterance_frames == sum(s.head.shape[0] for s in got)
        assert stats.frames > stats.window_frames > stats.utterance_frames
        assert math.isclose(stats.hours, stats.frames * HOP / SR / 3600.0)
    for s in samples:
        assert s.listener == s.dialog[5] and s.speaker in 'FM' and s.speaker != s.listener
        assert parse_utterance_id(s.utterance_id).speaker == s.speaker
        assert s.audio.dtype == np.float32 and s.head.dtype == np.float32
        assert s.head.shape == (s.audio.size // HOP, 3) and s.audio.size % HOP == 0
    assert report.total().n_dropped == sum(1 for d in corpus.dialogs for _, n in d.gaps
                                           if n / fps > 0.25)
    table = report.format_table()
    assert 'total' in table and 'nan_gap=' in table and len(table.splitlines()) == 8


def test_interpolated_frames_counted(corpus, parsed):
    """Frames bracketing a short NaN run are interpolated, and counted per sample."""
    samples, report = parsed
    by_id = {s.utterance_id: s for s in samples}
    expected_total = 0
    for d in corpus.dialogs:
        base = corpus.root / f'Session{d.session}' / 'dialog' / 'MOCAP_head'
        times, angles = read_mocap_head(base / f'{d.mocap_name}.txt')
        assert np.isnan(angles).any(axis=1).sum() == sum(n for _, n in d.gaps)
        counts = {}
        for row, rows in d.gaps:
            owner = by_id.get(_gap_owner(d, row).utterance_id)
            if owner is not None:
                t = _frame_times(owner)
                n = int(np.sum((t >= times[row - 1]) & (t < times[row + rows])))
                counts[owner.utterance_id] = counts.get(owner.utterance_id, 0) + n
                expected_total += n
        for uid, n in counts.items():
            assert by_id[uid].interpolated_frames == n > 0
    assert report.total().interpolated_frames == expected_total > 0


def test_planted_nod_alignment_radians_and_neutral(tmp_path):
    """Without noise the parsed head equals the planted motion at t_i = (i + 1) hop / sr."""
    config = SyntheticConfig(sessions=(1,), dialogs_per_session=2, turns_per_dialog=4,
                             noise_std_deg=(0.0, 0.0, 0.0), short_gaps_per_dialog=0,
                             long_gap_probability=0.0)
    corpus = generate_corpus(tmp_path, config, seed=3)
    samples = list(iter_listener_samples(corpus.root, sessions=[1]))
    assert samples
    nod = config.responses[0]
    assert nod.axis == 'pitch' and nod.trigger == 'phrase_end'
    for s in samples:
        truth = corpus.dialog(s.dialog)
        t = _frame_times(s)
        head_deg = np.rad2deg(s.head.astype(np.float64))
        assert np.max(np.abs(s.head)) < np.deg2rad(20.0)  # radians, not degrees
        exact = truth.deterministic_deg(t, relative=True)
        # The neutral (median) pose is subtracted exactly, and frame timing is exact.
        assert np.max(np.abs(head_deg - exact)) < 0.05
        late = truth.deterministic_deg(t - HOP / SR, relative=True)
        assert np.max(np.abs(head_deg - late)) > 0.5
        utterance = next(u for u in truth.utterances if u.utterance_id == s.utterance_id)
        for end in utterance.phrase_ends[:-1]:  # phrase ends that another phrase follows
            # The nod's trough (u = 1/3 of its length) lands where the lag says, +-1 frame.
            trough = end + nod.lag_seconds + nod.seconds / 3.0
            window = (t > end + nod.lag_seconds) & (t < end + nod.lag_seconds + nod.seconds)
            frame = np.flatnonzero(window)[np.argmin(head_deg[window, 1])]
            assert abs(t[frame] - trough) <= HOP / SR + 1e-9
            assert head_deg[frame, 1] < 0.9 * nod.amplitude_deg  # a dip of ~8 degrees


def test_bayes_floor_matches_generated_noise(corpus, parsed):
    """MAE between the generated truth and the planted deterministic part is the floor."""
    config = corpus.config
    per_axis, floor = bayes_floor_mae_deg(config)
    assert math.isclose(interpolation_factor(0.95), 0.9917, abs_tol=1e-4)
    assert math.isclose(per_axis[0], math.sqrt(2 / math.pi) * 0.6 * 0.9917, rel_tol=1e-3)
    assert math.isclose(floor, corpus.floor_mae_deg)
    _, raw_floor = bayes_floor_mae_deg(config, at_model_frames=False)
    errors = []
    for d in corpus.dialogs:
        base = corpus.root / f'Session{d.session}' / 'dialog' / 'MOCAP_head'
        times, angles = read_mocap_head(base / f'{d.mocap_name}.txt')
        ok = np.all(np.isfinite(angles), axis=1)
        errors.append(np.abs(angles[ok] - d.deterministic_deg(times[ok])))
    assert abs(np.mean(np.concatenate(errors)) / raw_floor - 1.0) < 0.04
    samples, _ = parsed
    per_utt = [np.abs(np.rad2deg(s.head) - corpus.dialog(s.dialog).deterministic_deg(
        _frame_times(s), relative=True)).mean() for s in samples]
    assert abs(np.mean(per_utt) / floor - 1.0) < 0.1
    assert corpus.neutral_mae_deg['protocol'] > 2.5 * floor


def test_speaker_channel_modes(corpus):
    """'speaker' picks the speaker's channel, 'mix' averages, 'left'/'right' are fixed."""
    dialog = find_dialogs(corpus.root, [1])[0]
    outs = {mode: list(iter_dialog_samples(dialog, IemocapConfig(speaker_channel=mode)))
            for mode in ('mix', 'left', 'right', 'speaker')}
    for mix, left, right, spk in zip(*outs.values()):
        np.testing.assert_allclose(mix.audio, 0.5 * (left.audio + right.audio), atol=1e-6)
        np.testing.assert_array_equal(spk.audio, left.audio if spk.speaker == 'F'
                                      else right.audio)
        listener = right.audio if spk.speaker == 'F' else left.audio
        assert np.sqrt(np.mean(spk.audio ** 2)) > 100 * np.sqrt(np.mean(listener ** 2))
    with pytest.raises(ValueError, match='speaker_channel'):
        IemocapConfig(speaker_channel='center')


def test_transcription_and_emotion_lines(tmp_path):
    """Odd transcription lines are skipped; EmoEvaluation consensus lines are parsed."""
    trans = tmp_path / 'Ses01F_impro01.txt'
    trans.write_text(
        'Ses01F_impro01_M000 [007.5712-010.4750]: Excuse me: is this it?\n'
        'M: breathing\n'
        'Ses01F_impro01_MXX0 [011.0000-011.5000]: [LAUGHTER]\n'
        'just some words without brackets\n'
        '\n'
        'Ses01F_impro01_F000 [012.0000-011.0000]: reversed times\n'
        'Ses01F_impro01_F001 [13.25-15]: ok\n', encoding='utf-8')
    utterances, skipped = parse_transcription(trans)
    assert [(u.utterance_id, u.start, u.end) for u in utterances] == [
        ('Ses01F_impro01_M000', 7.5712, 10.475), ('Ses01F_impro01_F001', 13.25, 15.0)]
    assert utterances[0].text == 'Excuse me: is this it?' and skipped == 4
    emo = tmp_path / 'emo.txt'
    emo.write_text(
        '% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]\n\n'
        '[6.2901 - 8.2357]\tSes01F_impro01_F000\tneu\t[2.5000, 2.5000, 2.5000]\n'
        'C-E2:\tNeutral;\t()\n'
        'A-E3:\tval 3; act 2; dom  2;\t()\n\n'
        '[10.0 - 11.5]\tSes01F_impro01_M001\txxx\t[1.5000, 4.0000, 4.5000]\n', encoding='utf-8')
    labels = parse_emo_evaluation(emo)
    assert set(labels) == {'Ses01F_impro01_F000', 'Ses01F_impro01_M001'}
    assert labels['Ses01F_impro01_M001'].label == 'xxx'
    assert (labels['Ses01F_impro01_F000'].valence, labels['Ses01F_impro01_M001'].dominance) == (
        2.5, 4.5)
    assert parse_utterance_id('Ses05M_script01_1b_F003').dialog == 'Ses05M_script01_1b'
    assert parse_utterance_id('Ses01F_impro01_MXX0') is None


def test_emotions_attached_to_samples(corpus, parsed):
    """Each listener sample carries the label and V/A/D of its EmoEvaluation line."""
    samples, _ = parsed
    s = samples[0]
    path = corpus.root / f'Session{s.session}' / 'dialog' / 'EmoEvaluation' / f'{s.dialog}.txt'
    label = parse_emo_evaluation(path)[s.utterance_id]
    assert (s.emotion, s.vad) == (label.label, (label.valence, label.activation,
                                                label.dominance))
    assert s.text.endswith(('.', '?')) and len(s.text.split()) >= 2


def test_head_track_nan_policy():
    """Gaps up to max_gap are bridged linearly and counted; longer ones make frames invalid."""
    fps = 120.0
    times = np.arange(1200) / fps
    angles = np.stack([times, 2.0 * times, -times], axis=1)  # degrees, linear in time
    angles[100:124] = np.nan  # 0.2 s: interpolated
    angles[600:636] = np.nan  # 0.3 s: too long
    angles[:5] = np.nan  # leading gap
    track = HeadTrack(times, angles, IemocapConfig(max_gap_seconds=0.25))
    t = np.arange(0.5, 1.5, 1.0 / 30.0)
    got = track.sample(t)
    assert got.valid.all() and got.head.shape == (t.size, 3) and not got.outside.any()
    assert got.interpolated.sum() == int(np.sum((t >= times[99]) & (t < times[124])))
    expected = np.deg2rad(np.stack([t, 2 * t, -t], axis=1) - track.neutral_deg)
    np.testing.assert_allclose(got.head, expected, atol=1e-6)
    long_gap = track.sample(np.arange(4.9, 5.4, 1 / 30.0))
    inside = (np.arange(4.9, 5.4, 1 / 30.0) > times[599]) & (
        np.arange(4.9, 5.4, 1 / 30.0) < times[636])
    np.testing.assert_array_equal(long_gap.valid, ~inside)
    assert np.all(long_gap.head[inside] == 0.0) and not long_gap.outside.any()
    assert not track.sample(np.array([0.01, 0.02])).valid.any()  # before the first valid row
    late = track.sample(np.array([9.0, 10.5]))
    assert late.valid.tolist() == [True, False] and late.outside.tolist() == [False, True]
    signs = HeadTrack(times, angles, IemocapConfig(axis_signs=(1.0, -1.0, 1.0)))
    np.testing.assert_allclose(signs.sample(t).head[:, 1], -got.head[:, 1], atol=1e-6)


def test_missing_mocap_and_bad_root(corpus, tmp_path):
    """A dialog without mocap drops its listener utterances; a bad root is a clear error."""
    shutil.copytree(corpus.root / 'Session1', tmp_path / 'Session1')
    dialog = corpus.dialogs[0]
    (tmp_path / 'Session1' / 'dialog' / 'MOCAP_head' / f'{dialog.mocap_name}.txt').unlink()
    report = PreparationReport()
    samples = list(iter_listener_samples(tmp_path, sessions=[1], report=report))
    assert report.sessions[1].dropped['missing_mocap'] == len(dialog.listener_utterances())
    assert all(s.dialog != dialog.name for s in samples) and samples
    with pytest.raises(FileNotFoundError, match='Session2'):
        list(iter_listener_samples(tmp_path, sessions=[1, 2]))


def test_generator_cli(tmp_path, capsys):
    """The generator's command line writes a corpus and prints its Bayes floor."""
    assert main([str(tmp_path), '--dialogs-per-session', '1', '--turns-per-dialog', '2',
                 '--seed', '1']) == 0
    out = capsys.readouterr().out
    assert 'Bayes-floor MAE: 0.475 deg' in out and 'neutral-pose MAE' in out
    assert len(list(Path(tmp_path).glob('IEMOCAP_full_release/Session*/dialog/wav/*.wav'))) == 5
