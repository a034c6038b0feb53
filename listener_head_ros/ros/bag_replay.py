"""
Replay a bag into the real listener node over rclpy, with ``/clock`` and ``use_sim_time``.

:func:`replay_bag` starts a :class:`~listener_head_ros.ros.listener_node.ListenerNode` in this
process, with the parameter file the robot uses (``config/listener.yaml`` by default) plus
``use_sim_time: true`` and the chosen ``model``, spinning on its own ``MultiThreadedExecutor``
as in the listener graph. A player node in the same process (on its own executor thread) then:

1. publishes ``/clock`` at the bag start and waits until the listener's clock shows it, then
   configures and activates the listener (so its timer counts from the bag start);
2. publishes the bag's ``AudioInfo`` (latched, as ``audio_capture`` does) and waits until the
   listener has applied it; without ``AudioInfo`` in the bag, none is published and the node
   decodes with its ``input.*`` parameters;
3. plays the bag's audio on the bag's audio topic at ``rate`` times real time, each message
   at its bag time, the bag's transcript (``hri_msgs/LiveSpeech``, when the bag has one and
   ``hri_msgs`` is installed) on the transcript topic, each result at its bag time after the
   audio stamped at or before it (the node's ``topics.speech`` is set to that topic), and
   ``/clock`` at the listener's tick deadlines (bag start plus whole
   timer periods, the same instants at which :func:`listener_head_ros.eval.offline.simulate_node`
   ticks), so each clock message releases exactly one tick that sees the audio stamped up
   to it;
4. records the node's ``head_pose`` (header stamps in sim time), ``backchannel`` and
   ``/diagnostics`` with their wall-clock arrival times.

In lockstep the player also waits, before each message, until the node has taken every
transcript result published so far, so a result meets the same audio in the node as in
:func:`~listener_head_ros.eval.simulate.simulate_node` and both stamp it with the same stream
time. Without ``hri_msgs`` a bag's transcript is not played (a note says so).

Latency (wall clock, both measured in this process): *tick latency*, from publishing the clock
message that releases a tick to receiving its ``HeadPose`` (executor wake-up, tick, DDS), and
*audio age*, from publishing the newest audio message a pose could reflect to receiving the
pose. Dropped frames come from the node's own counters (as on ``/diagnostics``).

Looping (``loops > 1``) jumps ``/clock`` back to the bag start after each pass, as
``ros2 bag play --loop --clock`` does. The node keeps running (its timer follows the backward
jump); the recorder detects every backward jump of the pose stamps and splits the recording
into segments, each scored on its own, so no metric mixes two passes: poses and backchannels
belong to the pass during which they arrived, and frames stepped and dropped are the node's
counters read at the end of each pass (exact in lockstep, where the node has answered every
tick of a pass before the clock jumps). The clock jumps are
reported in :attr:`ReplayResult.clock_jumps`.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
import gc
from pathlib import Path
import sys
import threading
import time
from typing import Callable, List, Optional, Tuple

from audio_common_msgs.msg import AudioData, AudioInfo
from diagnostic_msgs.msg import DiagnosticArray
import numpy as np
import rclpy
from rclpy.context import Context
from rclpy.executors import (
    Executor, ExternalShutdownException, MultiThreadedExecutor, SingleThreadedExecutor)
from rclpy.lifecycle import TransitionCallbackReturn
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rosgraph_msgs.msg import Clock

from listener_head_ros.eval.latency import latency_stats
from listener_head_ros.bags.reader import BagContents
from listener_head_ros.bags.topics import (
    AUDIO_INFO_TOPIC, AUDIO_TOPIC, TRANSCRIPT_LOCALE, TRANSCRIPT_TOPIC)
from listener_head_ros.eval.simulate import Trace
from listener_head_ros.settings import default_params_file, load_listener_settings
from listener_head_ros.models.base import TranscriptEvent
from listener_head_ros.msg import Backchannel, HeadPose
from listener_head_ros.ros.listener_node import GIL_SWITCH_INTERVAL, ListenerNode, LiveSpeech

LATCHED = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL,
                     reliability=ReliabilityPolicy.RELIABLE)


class ReplayError(RuntimeError):
    """The replay could not start or finish; the message says why."""


@dataclass(frozen=True)
class ReplayConfig:
    """How a bag is replayed into the listener node."""

    rate: float = 1.0  # times real time
    loops: int = 1  # passes over the bag; the clock jumps back between passes
    model: str = 'prosodic'
    params_file: Optional[Path] = None  # default: config/listener.yaml
    namespace: str = 'bag_replay'  # of the listener node (its outputs go under it)
    audio_topic: str = AUDIO_TOPIC
    audio_info_topic: str = AUDIO_INFO_TOPIC
    transcript_topic: str = TRANSCRIPT_TOPIC  # the LiveSpeech results, when the bag has them
    lockstep: bool = False  # wait for the node before each tick instead of letting it drop
    max_wait: float = 2.0  # s, the longest lockstep wait for one tick
    startup_timeout: float = 30.0  # s to configure, connect and apply AudioInfo
    drain_timeout: float = 2.0  # s to wait for the last poses after the last clock message

    def __post_init__(self) -> None:
        if not self.rate > 0:
            raise ValueError('rate must be positive')
        if self.loops < 1:
            raise ValueError('loops must be at least 1')


@dataclass
class ReplayResult:
    """The node's outputs over a replay, split at clock jumps."""

    segments: List[Trace]  # one per pass (a new one at each backward jump of the stamps)
    clock_jumps: List[Tuple[float, float]]  # (from, to) pose stamps, seconds
    diagnostics: dict  # the last /diagnostics values of the listener
    wall_seconds: float = 0.0
    messages_published: int = 0
    lockstep_waits: int = 0  # ticks the player had to wait for the node (lockstep only)
    lockstep_wait_seconds: float = 0.0
    notes: List[str] = field(default_factory=list)


class _Player:
    """The player and recorder node: /clock and audio out, the listener's outputs in."""

    def __init__(self, context: Context, config: ReplayConfig, speech: bool) -> None:
        self.node = rclpy.create_node('bag_replay_player', context=context)
        self.clock = self.node.create_publisher(Clock, '/clock', 100)
        self.audio = self.node.create_publisher(AudioData, config.audio_topic, 100)
        self.speech = (self.node.create_publisher(LiveSpeech, config.transcript_topic, 100)
                       if speech else None)
        self.info = self.node.create_publisher(AudioInfo, config.audio_info_topic, LATCHED)
        prefix = f'/{config.namespace}' if config.namespace else ''
        self.pose_topic = f'{prefix}/head_pose'
        self.lock = threading.Lock()
        self.poses: List[Tuple[float, HeadPose]] = []  # (wall arrival, message)
        self.backchannels: List[Tuple[float, Backchannel]] = []  # (wall arrival, message)
        self.diagnostics: dict = {}
        self.pose = self.node.create_subscription(HeadPose, self.pose_topic, self._on_pose,
                                                  1000)
        self.node.create_subscription(Backchannel, f'{prefix}/backchannel',
                                      self._on_backchannel, 1000)
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self._on_diagnostics, 50)

    def _on_pose(self, msg: HeadPose) -> None:
        with self.lock:
            self.poses.append((time.perf_counter(), msg))

    def _on_backchannel(self, msg: Backchannel) -> None:
        with self.lock:
            self.backchannels.append((time.perf_counter(), msg))

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name.endswith(': listener'):
                self.diagnostics = {kv.key: kv.value for kv in status.values}

    def publish_clock(self, ns: int) -> None:
        """Publish ``/clock`` at ``ns`` nanoseconds."""
        msg = Clock()
        msg.clock.sec, msg.clock.nanosec = int(ns // 10 ** 9), int(ns % 10 ** 9)
        self.clock.publish(msg)


def _spin(executor: Executor) -> None:
    try:
        executor.spin()
    except ExternalShutdownException:
        pass


def _wait(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise ReplayError(f'timed out after {timeout:.0f} s waiting for {what}')
        time.sleep(0.01)


def _stamp(msg) -> float:
    return msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9


def replay_bag(contents: BagContents, config: Optional[ReplayConfig] = None,
               context: Optional[Context] = None,
               progress: Optional[Callable[[float], None]] = None) -> ReplayResult:
    """Replay ``contents`` into a listener node and return what it published (see module)."""
    config = config or ReplayConfig()
    own_context = context is None
    if own_context:
        context = Context()
        rclpy.init(context=context)
    switch_interval = sys.getswitchinterval()
    sys.setswitchinterval(GIL_SWITCH_INTERVAL)  # as the node's entry points do
    params_file = Path(config.params_file or default_params_file())
    frame_rate = load_listener_settings(params_file, model=config.model).frame_rate
    speech = bool(contents.transcripts) and LiveSpeech is not None
    listener = ListenerNode(
        context=context, namespace=config.namespace,
        parameter_overrides=[Parameter('use_sim_time', value=True),
                             Parameter('model', value=config.model)]
        + ([Parameter('topics.speech', value=config.transcript_topic)] if speech else []),
        cli_args=['--ros-args', '--params-file', str(params_file),
                  '-r', f'audio:={config.audio_topic}',
                  '-r', f'audio_info:={config.audio_info_topic}'])
    player = _Player(context, config, speech)
    executors = [MultiThreadedExecutor(context=context), SingleThreadedExecutor(context=context)]
    executors[0].add_node(listener)
    executors[1].add_node(player.node)
    threads = [threading.Thread(target=_spin, args=(e,), daemon=True) for e in executors]
    for thread in threads:
        thread.start()
    try:
        return _run(contents, config, listener, player, frame_rate, progress)
    finally:
        for executor in executors:
            executor.shutdown(timeout_sec=10.0)
        for thread in threads:
            thread.join(timeout=10.0)
        if not any(thread.is_alive() for thread in threads):  # never under a spinning thread
            player.node.destroy_node()
            listener.destroy_node()
        sys.setswitchinterval(switch_interval)
        if own_context:
            rclpy.try_shutdown(context=context)
        # Free the nodes' handles now, in this process: a process forked later (e.g. a
        # multiprocessing pool) must never be the one to collect them.
        del listener, player, executors
        gc.collect()


def _run(contents: BagContents, config: ReplayConfig, listener: ListenerNode, player: _Player,
         frame_rate: float, progress: Optional[Callable[[float], None]]) -> ReplayResult:
    start_ns = int(round(contents.start * 1e9))
    end_ns = int(round(contents.end * 1e9))
    _wait(lambda: (player.publish_clock(start_ns) or
                   listener.get_clock().now().nanoseconds >= start_ns),
          config.startup_timeout, 'the listener to receive /clock')
    if listener.trigger_configure() != TransitionCallbackReturn.SUCCESS:
        raise ReplayError(f'the listener failed to configure with model {config.model!r} '
                          '(see its log)')
    if listener.trigger_activate() != TransitionCallbackReturn.SUCCESS:
        raise ReplayError('the listener failed to activate (see its log)')
    notes = []
    fmt = contents.audio_format
    if fmt is not None:
        player.info.publish(AudioInfo(channels=fmt.channels, sample_rate=fmt.sample_rate,
                                      sample_format=fmt.sample_format, bitrate=0,
                                      coding_format=fmt.coding_format))
        _wait(lambda: listener.status().audio_format == fmt, config.startup_timeout,
              'the listener to apply the AudioInfo')
        if listener.status().format_error:
            raise ReplayError(f'the listener refused the bag\'s AudioInfo: '
                              f'{listener.status().format_error}')
    else:
        notes.append('the bag has no AudioInfo: the node decoded with its input.* parameters')
    if contents.transcripts and player.speech is None:
        notes.append('the bag\'s transcript was not played: hri_msgs (LiveSpeech) is not '
                     'installed')
    _wait(lambda: (player.audio.get_subscription_count() > 0
                   and player.pose.get_publisher_count() > 0  # matched, not only in the graph
                   and (player.speech is None or player.speech.get_subscription_count() > 0)),
          config.startup_timeout, 'the listener to connect')

    # The timer's deadlines: activation time (the bag start) plus whole periods, as rcl counts.
    period_ns = int(1e9 / frame_rate)
    ticks = np.arange(start_ns + period_ns, end_ns + 1, period_ns, dtype=np.int64)
    audio_ns = np.round(contents.audio_stamps * 1e9).astype(np.int64)
    # At one instant: audio, then transcript results, then the clock (as simulate_node).
    speech = ([(int(round(t * 1e9)), e) for t, e in contents.transcripts]
              if player.speech is not None else [])
    events = sorted([(int(t), 0, i) for i, t in enumerate(audio_ns)]
                    + [(t, 1, i) for i, (t, _) in enumerate(speech)]
                    + [(int(t), 2, -1) for t in ticks])
    clock_wall: List[Tuple[int, float]] = []  # (sim ns, wall time published), per pass
    audio_wall: List[Tuple[int, float]] = []
    published, results, wall_start = 0, 0, time.perf_counter()
    waits, waited = 0, 0.0
    counters: List[Tuple[int, int]] = []  # the node's (stepped, dropped) at each pass's end
    for loop in range(config.loops):
        if loop:
            status = listener.status()
            counters.append((status.frames_stepped, status.frames_dropped))
            player.publish_clock(start_ns)  # the clock jumps back, as in ros2 bag play --loop
        pass_wall = time.perf_counter()
        for when, kind, index in events:
            if config.lockstep:
                seconds = _wait_for_node(listener, player, len(audio_wall), len(clock_wall),
                                         results, config.max_wait)
                waits, waited, pass_wall = waits + (seconds > 0), waited + seconds, (
                    pass_wall + seconds)
            delay = pass_wall + (when - start_ns) * 1e-9 / config.rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            if kind == 0:
                player.audio.publish(AudioData(data=contents.audio_payloads[index]))
                audio_wall.append((when, time.perf_counter()))
            elif kind == 1:
                player.speech.publish(_live_speech(speech[index][1]))
                results += 1
            else:
                player.publish_clock(when)
                clock_wall.append((when, time.perf_counter()))
                if progress is not None:
                    progress((when - start_ns) * 1e-9 + loop * (end_ns - start_ns) * 1e-9)
            published += 1
    expected = len(ticks) * config.loops
    deadline = time.monotonic() + config.drain_timeout
    while time.monotonic() < deadline:
        with player.lock:
            if len(player.poses) >= expected:
                break
        time.sleep(0.02)
    wall = time.perf_counter() - wall_start
    with player.lock:
        poses, backchannels = list(player.poses), list(player.backchannels)
    status = listener.status()
    counters.append((status.frames_stepped, status.frames_dropped))
    segments, jumps = _segments(poses, backchannels, clock_wall, audio_wall, counters)
    if len(poses) < expected:
        notes.append(f'received {len(poses)} of {expected} poses (one per clock tick)')
    result = ReplayResult(segments, jumps, dict(player.diagnostics), wall, published, waits,
                          waited, notes)
    if waits:
        notes.append(f'lockstep: the player waited {waited:.2f} s in all for the node to '
                     f'answer ({waits} waits over 1 ms), so the replay ran at '
                     f'x{contents.duration * config.loops / wall:.2f} rather than '
                     f'x{config.rate:g}')
    result.diagnostics.setdefault('dropped frames', str(status.frames_dropped))
    return result


def _live_speech(event: TranscriptEvent) -> LiveSpeech:
    """Return the ``LiveSpeech`` message of a bag's result, its header stamped as in the bag."""
    ns = int(round(event.time * 1e9))
    msg = LiveSpeech(incremental='' if event.final else event.text,
                     final=event.text if event.final else '', confidence=event.confidence,
                     locale=TRANSCRIPT_LOCALE)
    msg.header.stamp.sec, msg.header.stamp.nanosec = int(ns // 10 ** 9), int(ns % 10 ** 9)
    return msg


def _wait_for_node(listener: ListenerNode, player: _Player, audio_published: int,
                   ticks_published: int, results_published: int, max_wait: float) -> float:
    """Wait until the node has taken every audio message and result, answered every tick."""
    start = time.perf_counter()

    def caught_up() -> bool:
        with player.lock:
            answered = len(player.poses) >= ticks_published
        return (answered and listener.status().audio.messages >= audio_published
                and listener.engine.transcripts_received >= results_published)

    while not caught_up() and time.perf_counter() - start < max_wait:
        time.sleep(0.0005)
    waited = time.perf_counter() - start
    return waited if waited > 1e-3 else 0.0  # a sub-millisecond wait is the normal hand-off


def _segments(poses: List[Tuple[float, HeadPose]],
              backchannels: List[Tuple[float, Backchannel]],
              clock_wall: List[Tuple[int, float]], audio_wall: List[Tuple[int, float]],
              counters: List[Tuple[int, int]]
              ) -> Tuple[List[Trace], List[Tuple[float, float]]]:
    """
    Split the recording where the stamps jump back; give each segment its own figures.

    Poses and backchannels go to the pass during which they arrived (every pass covers the
    same bag times, so stamps cannot tell them apart); frames stepped and dropped are the
    differences of the node's counters read at each pass's end (``counters``, cumulative).
    """
    cuts, jumps = [0], []
    stamps = [_stamp(msg) for _, msg in poses]
    for i in range(1, len(stamps)):
        if stamps[i] < stamps[i - 1]:
            cuts.append(i)
            jumps.append((stamps[i - 1], stamps[i]))
    cuts.append(len(stamps))
    clock_cuts = [0] + [i for i in range(1, len(clock_wall))
                        if clock_wall[i][0] < clock_wall[i - 1][0]] + [len(clock_wall)]
    audio_cuts = [0] + [i for i in range(1, len(audio_wall))
                        if audio_wall[i][0] < audio_wall[i - 1][0]] + [len(audio_wall)]
    starts = [poses[c][0] for c in cuts[1:-1]]  # wall arrival of each later pass's first pose
    passes = [bisect.bisect_right(starts, arrival) for arrival, _ in backchannels]
    per_pass = [(s - ps, d - pd) for (s, d), (ps, pd) in zip(counters, [(0, 0)] + counters)]
    if len(per_pass) != len(cuts) - 1:  # a pass without poses: only totals are known
        per_pass = [counters[-1]] * (len(cuts) - 1)
    segments = []
    for k in range(len(cuts) - 1):
        part = poses[cuts[k]:cuts[k + 1]]
        times = np.array([_stamp(m) for _, m in part])
        clocks = clock_wall[clock_cuts[k]:clock_cuts[k + 1]] if k + 1 < len(clock_cuts) else []
        audio = audio_wall[audio_cuts[k]:audio_cuts[k + 1]] if k + 1 < len(audio_cuts) else []
        trace = Trace(times, np.array([(m.roll, m.pitch, m.yaw) for _, m in part],
                                      dtype=np.float64).reshape(-1, 3),
                      sorted((_stamp(b), b.type, float(b.intensity), float(b.duration))
                             for (_, b), n in zip(backchannels, passes) if n == k),
                      *per_pass[k])
        trace.latency = _latency(part, clocks, audio)
        segments.append(trace)
    return segments, jumps


def _latency(poses: List[Tuple[float, HeadPose]], clocks: List[Tuple[int, float]],
             audio: List[Tuple[int, float]]) -> dict:
    """Return tick latency and audio age statistics (wall seconds) of one segment."""
    clock_at = dict(clocks)
    audio_ns = [ns for ns, _ in audio]
    tick_pub, tick_got, age_pub, age_got = [], [], [], []
    for arrival, msg in poses:
        ns = msg.header.stamp.sec * 10 ** 9 + msg.header.stamp.nanosec
        if ns in clock_at:
            tick_pub.append(clock_at[ns])
            tick_got.append(arrival)
        newest = bisect.bisect_right(audio_ns, ns) - 1
        if newest >= 0:
            age_pub.append(audio[newest][1])
            age_got.append(arrival)
    return {'tick_latency': latency_stats(tick_pub, tick_got).to_dict(),
            'audio_age': latency_stats(age_pub, age_got).to_dict(),
            'tick_latency_samples_s': [b - a for a, b in zip(tick_pub, tick_got)]}


def replay_for_report(contents: BagContents, model: str, params_file: Optional[Path],
                      rate: float, loops: int, lockstep: bool,
                      progress: Optional[Callable[[float], None]] = None) -> ReplayResult:
    """Replay with these settings: the replayer of :func:`listener_head_ros.eval.report.main`."""
    return replay_bag(contents, ReplayConfig(rate=rate, loops=loops, model=model,
                                             params_file=params_file, lockstep=lockstep),
                      progress=progress)
