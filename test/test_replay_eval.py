"""
Replay evaluation through the real listener node over rclpy, and its agreement with offline.

The AGREEMENT test replays a 12 s bag at 4x in lockstep (the player never lets the node fall
behind, so no frame is dropped even on a loaded machine) and requires the replay's metrics to
equal the offline ones within TOLERANCE_MAE_DEG per axis and TOLERANCE_PEARSON. Measured: no
difference at all (the same poses at the same stamps).
"""

import json
import math

import numpy as np
import pytest

rclpy = pytest.importorskip('rclpy')
pytest.importorskip('audio_common_msgs.msg')
pytest.importorskip('listener_head_ros.msg')
pytest.importorskip('rosbags')

from listener_head_ros.bags.convert import BagConfig, convert_corpus  # noqa: E402
from listener_head_ros.data.synthetic_iemocap import (  # noqa: E402
    generate_corpus, SyntheticConfig)
from listener_head_ros.bags.reader import read_bag  # noqa: E402
from listener_head_ros.eval.scoring import score_trace  # noqa: E402
from listener_head_ros.eval.offline import offline_listener  # noqa: E402
from listener_head_ros.eval.report import comparison, evaluate_bag, write_report  # noqa: E402
from listener_head_ros.eval.simulate import simulate_node  # noqa: E402
from listener_head_ros.ros.bag_replay import (  # noqa: E402
    replay_bag, replay_for_report, ReplayConfig)

TOLERANCE_MAE_DEG = 0.05
TOLERANCE_PEARSON = 0.02
TINY = SyntheticConfig(sessions=(1,), dialogs_per_session=1, turns_per_dialog=4)


@pytest.fixture(scope='module')
def bag(tmp_path_factory):
    """Return a 12 s MCAP bag of one synthetic dialog."""
    corpus = generate_corpus(tmp_path_factory.mktemp('corpus'), TINY, seed=7)
    return convert_corpus(corpus.root, tmp_path_factory.mktemp('bags'), (1,),
                          config=BagConfig(max_seconds=12.0))[0].path


def test_offline_and_replay_agree(bag, tmp_path):
    """The same model on the same bag scores the same offline and through the node."""
    run = evaluate_bag(bag, 'prosodic', 'both', rate=4.0, lockstep=True, show_progress=False,
                       replayer=replay_for_report)
    offline, replay = run.results['offline'], run.results['replay']
    assert not run.replay_info['clock_jumps'] and run.replay_info['segments'] == 1
    assert replay.trace.frames_dropped == 0
    assert replay.trace.times.size == offline.trace.times.size
    assert offline.head is not None and replay.head is not None
    for axis in ('roll', 'pitch', 'yaw'):
        assert abs(replay.head.mae_deg[axis] - offline.head.mae_deg[axis]) <= TOLERANCE_MAE_DEG
        assert abs(replay.head.pearson[axis] - offline.head.pearson[axis]) <= TOLERANCE_PEARSON
    assert replay.trace.latency['tick_latency']['count'] == offline.trace.times.size
    out = write_report(run, tmp_path / 'report')
    data = json.loads((out / 'metrics.json').read_text())
    assert data['difference']['common_stamps'] == offline.trace.times.size
    assert data['difference']['max_abs_mae_diff_deg'] <= TOLERANCE_MAE_DEG
    assert 'Why offline and replay differ' in (out / 'summary.md').read_text()
    assert (out / 'latency.png').stat().st_size > 1000


def test_clock_jump_when_looping(bag, rclpy_context):
    """Looping jumps the clock back: detected, split into passes, and the node keeps going."""
    contents = read_bag(bag)
    replay = replay_bag(contents, ReplayConfig(rate=4.0, loops=2, lockstep=True),
                        context=rclpy_context)
    assert len(replay.clock_jumps) == 1
    jump_from, jump_to = replay.clock_jumps[0]
    assert jump_to < jump_from and jump_to < contents.start + 0.1
    assert len(replay.segments) == 2
    first, second = (score_trace('replay', s, contents) for s in replay.segments)
    assert second.trace.times.size >= 0.9 * first.trace.times.size  # still publishing
    assert np.all(np.diff(second.trace.times) > 0)  # each segment is monotonic
    assert math.isfinite(second.head.mae_mean_deg)
    hops = len(contents.audio_payloads) * 512 // 533
    for segment in replay.segments:  # each pass has its own counters and events
        assert abs(segment.frames_stepped - hops) <= 2, segment.frames_stepped
        assert all(contents.start <= t <= contents.end + 0.1
                   for t, *_ in segment.backchannels)
    assert int(replay.diagnostics['frames processed']) <= sum(
        s.frames_stepped for s in replay.segments)


def test_replay_without_audio_info_and_in_real_time(bag, tmp_path, rclpy_context):
    """No AudioInfo: the node decodes with its defaults; real-time pacing reports its timing."""
    from test_offline_eval import copy_bag
    contents = read_bag(copy_bag(bag, tmp_path / 'no_info', drop=('/audio/audio_info',)))
    contents.end = contents.start + 4.0  # a short real-time run
    replay = replay_bag(contents, ReplayConfig(rate=2.0), context=rclpy_context)
    assert any('no AudioInfo' in note for note in replay.notes)
    assert replay.segments and replay.segments[0].times.size > 30
    assert 'dropped frames' in replay.diagnostics
    latency = replay.segments[0].latency
    assert latency['tick_latency']['count'] > 0 and latency['audio_age']['count'] > 0


def test_offline_and_replay_agree_with_transcripts(bag, tmp_path):
    """A text model hears the bag's LiveSpeech the same offline and through the node."""
    pytest.importorskip('hri_msgs.msg')
    from test_offline_eval import text_checkpoint
    checkpoint = str(text_checkpoint(tmp_path / 'text'))
    contents = read_bag(bag)
    assert contents.transcripts
    run = evaluate_bag(bag, checkpoint, 'both', rate=4.0, lockstep=True, show_progress=False,
                       replayer=replay_for_report)
    offline, replay = run.results['offline'], run.results['replay']
    assert replay.trace.frames_dropped == 0
    assert replay.trace.times.size == offline.trace.times.size
    difference = comparison(offline, replay)
    assert difference['common_stamps'] == offline.trace.times.size
    assert difference['max_pose_diff_deg_at_common_stamps'] <= TOLERANCE_MAE_DEG
    for axis in ('roll', 'pitch', 'yaw'):
        assert abs(replay.head.mae_deg[axis] - offline.head.mae_deg[axis]) <= TOLERANCE_MAE_DEG
        assert abs(replay.head.pearson[axis] - offline.head.pearson[axis]) <= TOLERANCE_PEARSON
    contents.transcripts = []  # the same bag without them: the text model moves otherwise
    listener = offline_listener(model=checkpoint, transcripts=True)
    without = simulate_node(contents, listener)
    assert np.degrees(np.abs(without.poses - offline.trace.poses)).max() > 4 * TOLERANCE_MAE_DEG
