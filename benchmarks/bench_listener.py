"""
Benchmark the listener (embedded default or ``--model`` checkpoint) here; print the figures.

Parts (``--parts``, all by default; see benchmarks/README.md for what each figure means):

tick
    Tick compute time p50/p99, as the real node reports it on ``/diagnostics`` while audio is
    streamed at real time from this process, and over the whole stream from a per-tick log;
    plus the pure in-process engine tick over the speech file, without ROS.
latency
    End-to-end latency, over real DDS, from the publish of the audio message that completes a
    hop to the receipt of the ``HeadPose`` of the tick that consumed the hop, p50/p99.
drops
    Dropped frames over a real-time stream (``--minutes``, default 10).
rss
    Resident memory before and after an hour of audio fed as fast as possible through the
    engine and audio input (the node's code path without ROS), and through a ListenerNode
    called in-process.

The node runs as the listener graph in a process of its own (``instrumented_graph.py``: the
graph of ``python -m listener_head_ros.ros.graph`` plus a per-tick log). This is a benchmark:
it prints numbers next to the targets and never fails on timing. Example::

    python benchmarks/bench_listener.py --quick
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
import gc
import json
import math
import os
from pathlib import Path
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import soundfile

REPO = Path(__file__).resolve().parents[1]
SPEECH = REPO / 'listener_head_ros' / 'data' / 'speech_en.wav'
RUNNER = Path(__file__).resolve().parent / 'instrumented_graph.py'
CHUNK_FRAMES = 512  # frames per AudioData message, as audio_capture and the demo publisher
AUDIO_TOPIC, AUDIO_INFO_TOPIC = '/audio/audio', '/audio/audio_info'  # the graph's defaults
POSE_TOPIC = '/head_pose'
TARGET_TICK_P99_MS = 5.0
TARGET_E2E_MARGIN_MS = 10.0  # end-to-end p50 target: one frame period plus this
TARGET_RSS_GROWTH_MB = 5.0
ALL_PARTS = ('tick', 'latency', 'drops', 'rss')


# Environment and helpers --------------------------------------------------------------------

def configure_ros_environment() -> Tuple[str, str]:
    """Give DDS a domain of its own (random if unset) on loopback only; return both values."""
    os.environ.setdefault('ROS_DOMAIN_ID', str(random.SystemRandom().randint(1, 100)))
    os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    return os.environ['ROS_DOMAIN_ID'], os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE']


def percentiles_ms(seconds: Any) -> Tuple[float, float]:
    """Return the p50 and p99 of durations given in seconds, in milliseconds."""
    values = np.asarray(seconds, dtype=float)
    values = values[np.isfinite(values)]
    if not values.size:
        return math.nan, math.nan
    p50, p99 = np.percentile(values * 1e3, [50, 99])
    return float(p50), float(p99)


def rss_mb() -> float:
    """Return this process's resident set size in MB (psutil if installed, else /proc)."""
    try:
        import psutil
        return psutil.Process().memory_info().rss / 2**20
    except ImportError:
        pass
    with open('/proc/self/status', encoding='ascii') as status:
        for line in status:
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) / 1024
    return math.nan


def build_engine(settings):
    """Build the engine and audio input with the node's builder, warmed up as at configure."""
    from listener_head_ros.build import build_listener
    listener = build_listener(settings)
    listener.engine.warm_up()
    return listener.engine, listener.audio_input


class LoopedSpeech:
    """A speech file at the model rate, looped without gaps, cut into S16LE mono payloads."""

    def __init__(self, path: Path, sample_rate: int, chunk_frames: int = CHUNK_FRAMES) -> None:
        from listener_head_ros.audio.pcm import encode_pcm
        from listener_head_ros.audio.resample import StreamingResampler

        samples, rate = soundfile.read(path, dtype='float32', always_2d=True)
        mono = samples.mean(axis=1)
        if rate != sample_rate:
            resampler = StreamingResampler(rate, sample_rate)
            mono = np.concatenate([resampler.process(mono), resampler.flush()])
        self.sample_rate = sample_rate
        self.chunk_frames = chunk_frames
        self.seconds = mono.size / sample_rate
        self._pcm = np.frombuffer(encode_pcm(mono, 'S16LE'), dtype='<i2')
        self._looped = np.concatenate([self._pcm, self._pcm[:chunk_frames]])

    def chunk_seconds(self) -> float:
        """Return the audio duration of one payload, s."""
        return self.chunk_frames / self.sample_rate

    def messages_for(self, seconds: float) -> int:
        """Return how many payloads make up ``seconds`` of audio."""
        return int(math.ceil(seconds / self.chunk_seconds()))

    def payload(self, index: int) -> bytes:
        """Return the S16LE bytes of payload ``index`` of the endless loop."""
        start = (index * self.chunk_frames) % self._pcm.size
        return self._looped[start:start + self.chunk_frames].tobytes()


def feed_engine(engine, audio_input, speech: LoopedSpeech, first: int, count: int,
                on_tick=None) -> int:
    """
    Push payloads ``first .. first+count-1`` and tick at their simulated times, without waiting.

    A tick at time t sees every message whose audio ended by t, as on the robot with a
    microphone driver; return the number of ticks run.
    """
    chunk, period = speech.chunk_seconds(), 1.0 / engine.config.frame_rate
    next_tick = (math.floor(first * chunk / period) + 1) * period
    ticks = 0
    for index in range(first, first + count):
        audio_input.push(speech.payload(index))
        now = (index + 1) * chunk
        while next_tick <= now:
            output = engine.tick()
            if on_tick is not None:
                on_tick(output)
            next_tick += period
            ticks += 1
    return ticks


# Part tick, in-process ----------------------------------------------------------------------

def bench_engine_tick(settings, speech_path: Path, passes: int) -> Dict[str, Any]:
    """Time ListenerEngine.tick in this process (no ROS) over the speech file, simulated."""
    engine, audio_input = build_engine(settings)
    speech = LoopedSpeech(speech_path, engine.model.sample_rate)
    wall: List[float] = []
    cpu: List[float] = []

    def record(output) -> None:
        wall.append(output.compute_seconds)
        cpu.append(output.cpu_seconds)
    count = speech.messages_for(speech.seconds * passes)
    started = time.perf_counter()
    ticks = feed_engine(engine, audio_input, speech, 0, count, record)
    elapsed = time.perf_counter() - started
    p50, p99 = percentiles_ms(wall)
    cpu_p50, cpu_p99 = percentiles_ms(cpu)
    return {'ticks': ticks, 'audio_s': count * speech.chunk_seconds(), 'wall_s': elapsed,
            'p50_ms': p50, 'p99_ms': p99, 'max_ms': float(np.max(wall) * 1e3),
            'cpu_p50_ms': cpu_p50, 'cpu_p99_ms': cpu_p99,
            'frames_stepped': engine.frames_stepped, 'frames_dropped': engine.frames_dropped}


# Parts tick, latency, drops: the node in its own process, audio over DDS ---------------------

@dataclass
class StreamResult:
    """What the real-time streaming session measured."""

    messages: int = 0
    publish_ns: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    start_ns: int = 0
    end_ns: int = 0
    receipts: Dict[int, Tuple[int, int]] = field(default_factory=dict)
    diagnostics: List[Tuple[int, Dict[str, str]]] = field(default_factory=list)
    final_diagnostics: Dict[str, str] = field(default_factory=dict)
    tick_log: Dict[str, np.ndarray] = field(default_factory=dict)
    late_publishes: int = 0
    max_publish_lateness_ms: float = 0.0


class GraphProcess:
    """The instrumented listener graph in a child process; stopped with SIGINT, then killed."""

    def __init__(self, params_file: Path, model: str, workdir: Path, verbose: bool) -> None:
        self.log_path = workdir / 'tick_log.npz'
        self.output_path = workdir / 'graph_output.txt'
        self._output = None if verbose else open(self.output_path, 'wb')
        self.process = subprocess.Popen(
            [sys.executable, str(RUNNER), '--log', str(self.log_path),
             '--params-file', str(params_file), '--model', model],
            stdout=self._output, stderr=subprocess.STDOUT if self._output else None,
            env=dict(os.environ))

    def alive(self) -> bool:
        """Return whether the child is still running."""
        return self.process.poll() is None

    def stop(self, timeout: float = 15.0) -> int:
        """Send SIGINT, wait, then SIGKILL if needed; return the exit code."""
        if self.alive():
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5.0)
        if self._output is not None:
            self._output.close()
            self._output = None
        return self.process.returncode

    def output_tail(self, lines: int = 20) -> str:
        """Return the last lines the child printed (when not --verbose)."""
        if not self.output_path.exists():
            return ''
        text = self.output_path.read_text(errors='replace').splitlines()
        return '\n'.join(text[-lines:])


class AudioStreamer(threading.Thread):
    """Publish AudioData payloads at real time on absolute deadlines, stamping each publish."""

    def __init__(self, publisher, speech: LoopedSpeech, count: int) -> None:
        super().__init__(name='audio_streamer', daemon=True)
        self.publisher, self.speech, self.count = publisher, speech, count
        self.publish_ns = np.zeros(count, dtype=np.int64)
        self.published = 0
        self.late = 0
        self.max_lateness = 0.0
        self.stop_event = threading.Event()

    def run(self) -> None:
        """Publish until done or stopped."""
        from audio_common_msgs.msg import AudioData

        period = self.speech.chunk_seconds()
        start = time.monotonic() + 0.05
        for index in range(self.count):
            msg = AudioData(data=self.speech.payload(index))
            delay = start + index * period - time.monotonic()
            if delay > 0 and self.stop_event.wait(delay):
                return
            if self.stop_event.is_set():
                return
            if delay < -0.005:
                self.late += 1
                self.max_lateness = max(self.max_lateness, -delay)
            self.publish_ns[index] = time.time_ns()
            self.publisher.publish(msg)
            self.published = index + 1


def run_stream(params_file: Path, model: str, speech_path: Path, minutes: float,
               startup_timeout: float, workdir: Path, verbose: bool) -> StreamResult:
    """Start the graph, stream audio at real time for ``minutes``, collect what came back."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    from rclpy.signals import SignalHandlerOptions
    from audio_common_msgs.msg import AudioData, AudioInfo
    from diagnostic_msgs.msg import DiagnosticArray
    from listener_head_ros.msg import HeadPose

    result = StreamResult()
    speech = LoopedSpeech(speech_path, 16000)
    context = rclpy.context.Context()
    rclpy.init(context=context, signal_handler_options=SignalHandlerOptions.NO)
    graph = GraphProcess(params_file, model, workdir, verbose)
    node = rclpy.create_node('listener_bench', context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    streamer = None
    try:
        latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL,
                             reliability=ReliabilityPolicy.RELIABLE)
        info_publisher = node.create_publisher(AudioInfo, AUDIO_INFO_TOPIC, latched)
        audio_publisher = node.create_publisher(AudioData, AUDIO_TOPIC, 10)

        def on_pose(msg, info) -> None:
            now = time.time_ns()
            key = msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec
            result.receipts[key] = (now, int(info.get('received_timestamp') or 0))

        def on_diagnostics(msg) -> None:
            for status in msg.status:
                if status.name.endswith(': listener'):
                    stamp = msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec
                    result.diagnostics.append(
                        (stamp, {kv.key: kv.value for kv in status.values}))
        node.create_subscription(HeadPose, POSE_TOPIC, on_pose, 200)
        node.create_subscription(DiagnosticArray, '/diagnostics', on_diagnostics, 20)
        info_publisher.publish(AudioInfo(channels=1, sample_rate=16000, sample_format='S16LE',
                                         coding_format='wave', bitrate=16000 * 16))

        def spin_until(predicate, timeout: float, what: str) -> None:
            deadline = time.monotonic() + timeout
            while not predicate():
                if not graph.alive():
                    raise RuntimeError(f'the listener graph exited (code {graph.stop()}):\n'
                                       f'{graph.output_tail()}')
                if time.monotonic() > deadline:
                    raise RuntimeError(f'timed out waiting for {what}\n{graph.output_tail()}')
                executor.spin_once(timeout_sec=0.05)
        print(f'  starting the listener graph (ROS_DOMAIN_ID={os.environ["ROS_DOMAIN_ID"]}) ...',
              flush=True)
        spin_until(lambda: result.receipts and result.diagnostics, startup_timeout,
                   'head_pose and /diagnostics from the graph')
        spin_until(lambda: audio_publisher.get_subscription_count() > 0
                   and result.diagnostics[-1][1].get('input format', '').startswith(
                       'S16LE 16000 Hz x1'), 15.0,
                   'the audio subscription and AudioInfo to reach the listener')
        count = speech.messages_for(minutes * 60.0)
        print(f'  graph is up; streaming {count * speech.chunk_seconds():.0f} s of speech '
              f'({speech.seconds:.1f} s file, looped) at real time to {AUDIO_TOPIC} ...',
              flush=True)
        streamer = AudioStreamer(audio_publisher, speech, count)
        result.start_ns = time.time_ns()
        streamer.start()
        next_report = time.monotonic() + 30.0
        while streamer.is_alive():
            executor.spin_once(timeout_sec=0.05)
            if not graph.alive():
                raise RuntimeError(f'the listener graph exited:\n{graph.output_tail()}')
            if time.monotonic() >= next_report:
                next_report += 30.0
                last = result.diagnostics[-1][1] if result.diagnostics else {}
                print(f'    {streamer.published * speech.chunk_seconds():6.0f} s streamed, '
                      f'tick p99 {last.get("tick compute p99 (ms)", "?")} ms, '
                      f'dropped {last.get("dropped frames", "?")}', flush=True)
        result.end_ns = time.time_ns()
        # Let the last hops be stepped and one more /diagnostics message report them.
        spin_until(lambda: result.diagnostics[-1][0] > result.end_ns + 300_000_000, 10.0,
                   'the final /diagnostics message')
        result.final_diagnostics = result.diagnostics[-1][1]
        result.messages = streamer.published
        result.publish_ns = streamer.publish_ns[:streamer.published]
        result.late_publishes = streamer.late
        result.max_publish_lateness_ms = streamer.max_lateness * 1e3
    finally:
        if streamer is not None:
            streamer.stop_event.set()
            streamer.join(timeout=5.0)
        code = graph.stop()
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown(context=context)
    if graph.log_path.exists():
        with np.load(graph.log_path) as log:
            result.tick_log = {k: log[k] for k in log.files}
    else:
        print(f'  warning: the graph wrote no tick log (exit code {code})\n'
              f'{graph.output_tail()}', file=sys.stderr)
    return result


def analyse_ticks(result: StreamResult) -> Dict[str, Any]:
    """Compute tick p50/p99 from /diagnostics (the node's window) and over the whole stream."""
    during = [d for stamp, d in result.diagnostics if result.start_ns < stamp <= result.end_ns]
    out: Dict[str, Any] = {}
    if during:
        last = during[-1]
        for key, name in (('p50_ms', 'tick compute p50 (ms)'),
                          ('p99_ms', 'tick compute p99 (ms)'),
                          ('cpu_p50_ms', 'tick CPU p50 (ms)'),
                          ('cpu_p99_ms', 'tick CPU p99 (ms)')):
            out[f'diag_{key}'] = float(last.get(name, 'nan'))
        out['diag_max_p99_ms'] = max(float(d.get('tick compute p99 (ms)', 'nan')) for d in during)
    log = result.tick_log
    if log:
        stamps = log['stamp_ns']
        window = (stamps > result.start_ns) & (stamps <= result.end_ns)
        out['log_ticks'] = int(window.sum())
        out['log_p50_ms'], out['log_p99_ms'] = percentiles_ms(log['compute_s'][window])
        out['log_cpu_p50_ms'], out['log_cpu_p99_ms'] = percentiles_ms(log['cpu_s'][window])
        out['log_max_ms'] = float(np.nanmax(log['compute_s'][window]) * 1e3) if window.any() \
            else math.nan
    return out


def analyse_latency(result: StreamResult) -> Dict[str, Any]:
    """
    Match every stepped hop to the audio message that completed it and the pose that showed it.

    Hop k (1-based) of the stream ends at sample k * hop_length, so it is completed by message
    ceil(k * hop_length / 512) - 1 (0-based; the node's buffer holds exactly the published
    samples when none were lost: checked below). The tick log says which hops each tick
    consumed (the oldest ones dropped, the rest stepped) and the stamp of the pose it published.
    """
    log = result.tick_log
    out: Dict[str, Any] = {'valid': False}
    if not log or not result.messages:
        out['problem'] = 'no tick log or no audio published'
        return out
    hop = int(log['hop_length'])
    problems = []
    if int(log['messages']) != result.messages:
        problems.append(f'the node received {int(log["messages"])} of {result.messages} '
                        'audio messages')
    if int(log['overflow_samples']):
        problems.append(f'{int(log["overflow_samples"])} samples overflowed the ring buffer')
    if int(log['output_samples']) != int(log['input_frames']):
        problems.append('the node resampled the audio')
    stepped_total = log['stepped_total'].astype(np.int64)
    consumed_total = stepped_total + log['dropped_total'].astype(np.int64)
    stepped = np.diff(stepped_total, prepend=0)
    consumed_before = np.concatenate([[0], consumed_total[:-1]])
    dropped_now = consumed_total - consumed_before - stepped
    e2e, node_part, pose_age = [], [], []
    missing_poses = 0
    for j in np.flatnonzero(stepped > 0):
        receipt = result.receipts.get(int(log['stamp_ns'][j]))
        if receipt is None:
            missing_poses += 1
            continue
        first_hop = consumed_before[j] + dropped_now[j] + 1
        hops = np.arange(first_hop, consumed_total[j] + 1)
        messages = -(-hops * hop // CHUNK_FRAMES) - 1
        if messages[-1] >= result.messages:
            problems.append('a tick consumed more audio than was published')
            break
        published = result.publish_ns[messages]
        e2e.extend((receipt[0] - published) / 1e9)
        node_part.extend((int(log['stamp_ns'][j]) - published) / 1e9)
        pose_age.append((receipt[0] - published[-1]) / 1e9)
    e2e_array = np.asarray(e2e)
    if e2e_array.size and e2e_array.min() < 0:
        problems.append(f'{int((e2e_array < 0).sum())} negative latencies')
    receipts = np.array([r for r in result.receipts.values()], dtype=np.int64)
    stamps = np.array(list(result.receipts.keys()), dtype=np.int64)
    in_window = (stamps > result.start_ns) & (stamps <= result.end_ns)
    transport = (receipts[in_window, 0] - stamps[in_window]) / 1e9
    middleware = receipts[in_window, 1]
    has_middleware = in_window.any() and bool((middleware > 0).all())
    out.update(hops=int(e2e_array.size), missing_poses=missing_poses, problems=problems,
               valid=not problems and e2e_array.size > 0)
    out['p50_ms'], out['p99_ms'] = percentiles_ms(e2e_array)
    out['max_ms'] = float(e2e_array.max() * 1e3) if e2e_array.size else math.nan
    out['node_p50_ms'], out['node_p99_ms'] = percentiles_ms(node_part)
    out['pose_p50_ms'], out['pose_p99_ms'] = percentiles_ms(transport)
    if has_middleware:
        out['dds_p50_ms'], out['dds_p99_ms'] = percentiles_ms(
            (middleware - stamps[in_window]) / 1e9)
    out['age_p50_ms'], out['age_p99_ms'] = percentiles_ms(pose_age)
    return out


def analyse_drops(result: StreamResult) -> Dict[str, Any]:
    """Read dropped and processed frames from the final /diagnostics; add the expected count."""
    final = result.final_diagnostics
    hop = int(result.tick_log['hop_length']) if result.tick_log else 533
    expected = result.messages * CHUNK_FRAMES // hop
    return {'dropped': int(final.get('dropped frames', -1)),
            'processed': int(final.get('frames processed', -1)), 'expected': expected,
            'messages_received': int(final.get('messages', -1)),
            'messages_published': result.messages,
            'overflow_samples': int(final.get('buffer overflow samples', -1)),
            'stream_s': (result.end_ns - result.start_ns) / 1e9,
            'late_publishes': result.late_publishes,
            'max_publish_lateness_ms': result.max_publish_lateness_ms}


# Part rss -----------------------------------------------------------------------------------

def bench_rss_engine(settings, speech_path: Path, minutes: float,
                     warmup_minutes: float) -> Dict[str, Any]:
    """Measure RSS before/after ``minutes`` of audio through AudioStreamInput and the engine."""
    engine, audio_input = build_engine(settings)
    speech = LoopedSpeech(speech_path, engine.model.sample_rate)

    def feed(first: int, count: int) -> None:
        feed_engine(engine, audio_input, speech, first, count)
    return _measure_rss(speech, minutes, warmup_minutes, feed,
                        lambda: (engine.frames_stepped, engine.frames_dropped))


def bench_rss_node(params_file: Path, model: str, speech_path: Path, minutes: float,
                   warmup_minutes: float) -> Dict[str, Any]:
    """
    Measure RSS before/after ``minutes`` of audio through a ListenerNode's callbacks here.

    The node is configured and activated from the same parameter file, then its audio callback,
    tick (which publishes HeadPose, FacialReaction, Backchannel, Expression over DDS) and
    diagnostics are called directly at the simulated times, as fast as possible.
    """
    import rclpy
    from rclpy.lifecycle import TransitionCallbackReturn
    from rclpy.parameter import Parameter
    from rclpy.signals import SignalHandlerOptions
    from audio_common_msgs.msg import AudioData
    from listener_head_ros.ros.listener_node import ListenerNode

    context = rclpy.context.Context()
    rclpy.init(context=context, signal_handler_options=SignalHandlerOptions.NO)
    node = ListenerNode(context=context, cli_args=['--ros-args', '--params-file',
                                                   str(params_file)],
                        parameter_overrides=[Parameter('model', value=model)])
    try:
        if node.trigger_configure() != TransitionCallbackReturn.SUCCESS:
            raise RuntimeError('the listener failed to configure')
        if node.trigger_activate() != TransitionCallbackReturn.SUCCESS:
            raise RuntimeError('the listener failed to activate')
        speech = LoopedSpeech(speech_path, node.engine.model.sample_rate)
        chunk, period = speech.chunk_seconds(), 1.0 / node.engine.config.frame_rate
        per_diagnostics = max(1, int(round(1.0 / chunk)))

        def feed(first: int, count: int) -> None:
            next_tick = (math.floor(first * chunk / period) + 1) * period
            for index in range(first, first + count):
                node._on_audio(AudioData(data=speech.payload(index)))
                now = (index + 1) * chunk
                while next_tick <= now:
                    node._on_tick()
                    next_tick += period
                if index % per_diagnostics == 0:
                    node._publish_diagnostics()
        return _measure_rss(speech, minutes, warmup_minutes, feed,
                            lambda: (node.engine.frames_stepped, node.engine.frames_dropped))
    finally:
        node.trigger_shutdown()
        node.destroy_node()
        rclpy.try_shutdown(context=context)


def _measure_rss(speech: LoopedSpeech, minutes: float, warmup_minutes: float, feed,
                 counters) -> Dict[str, Any]:
    warmup = speech.messages_for(warmup_minutes * 60.0)
    feed(0, warmup)
    gc.collect()
    before = rss_mb()
    total = speech.messages_for(minutes * 60.0)
    steps = 6
    trace = [(0.0, before)]
    started = time.perf_counter()
    done = 0
    for step in range(1, steps + 1):
        upto = total * step // steps
        feed(warmup + done, upto - done)
        done = upto
        gc.collect()
        trace.append((done * speech.chunk_seconds() / 60.0, rss_mb()))
    elapsed = time.perf_counter() - started
    after = trace[-1][1]
    audio_s = total * speech.chunk_seconds()
    stepped, dropped = counters()
    return {'before_mb': before, 'after_mb': after, 'growth_mb': after - before,
            'audio_s': audio_s, 'wall_s': elapsed, 'realtime_factor': audio_s / elapsed,
            'trace': trace, 'frames_stepped': stepped, 'frames_dropped': dropped}


# Report -------------------------------------------------------------------------------------

def _fmt(value: Any, digits: int = 2) -> str:
    if isinstance(value, float):
        return 'n/a' if math.isnan(value) else f'{value:.{digits}f}'
    return str(value)


def _verdict(ok: Optional[bool]) -> str:
    return '-' if ok is None else ('meets' if ok else 'MISSES')


def summary_rows(results: Dict[str, Any], frame_period_ms: float) -> List[Tuple[str, ...]]:
    """Return (figure, measured, target, verdict) rows for the final table."""
    rows: List[Tuple[str, ...]] = []
    e2e_target = frame_period_ms + TARGET_E2E_MARGIN_MS
    node_ticks = results.get('node_tick', {})
    if 'diag_p99_ms' in node_ticks:
        rows.append(('tick compute p50 / p99, node /diagnostics (wall)',
                     f'{_fmt(node_ticks["diag_p50_ms"], 3)} / {_fmt(node_ticks["diag_p99_ms"], 3)}'
                     ' ms', f'p99 <= {TARGET_TICK_P99_MS:.0f} ms',
                     _verdict(node_ticks['diag_p99_ms'] <= TARGET_TICK_P99_MS)))
        rows.append(('tick CPU p50 / p99, node /diagnostics',
                     f'{_fmt(node_ticks["diag_cpu_p50_ms"], 3)} / '
                     f'{_fmt(node_ticks["diag_cpu_p99_ms"], 3)} ms', '', '-'))
    if 'log_p99_ms' in node_ticks:
        rows.append(('tick compute p50 / p99, node, whole stream',
                     f'{_fmt(node_ticks["log_p50_ms"], 3)} / {_fmt(node_ticks["log_p99_ms"], 3)}'
                     ' ms', f'p99 <= {TARGET_TICK_P99_MS:.0f} ms',
                     _verdict(node_ticks['log_p99_ms'] <= TARGET_TICK_P99_MS)))
    if 'engine_tick' in results:
        engine = results['engine_tick']
        rows.append(('tick compute p50 / p99, engine in-process (no ROS)',
                     f'{_fmt(engine["p50_ms"], 3)} / {_fmt(engine["p99_ms"], 3)} ms',
                     f'p99 <= {TARGET_TICK_P99_MS:.0f} ms',
                     _verdict(engine['p99_ms'] <= TARGET_TICK_P99_MS)))
    if 'latency' in results:
        latency = results['latency']
        rows.append(('end-to-end audio publish -> HeadPose receipt p50 / p99',
                     f'{_fmt(latency["p50_ms"], 1)} / {_fmt(latency["p99_ms"], 1)} ms'
                     + ('' if latency['valid'] else ' (INVALID)'),
                     f'p50 <= {e2e_target:.1f} ms',
                     _verdict(latency['p50_ms'] <= e2e_target) if latency['valid'] else '-'))
    if 'drops' in results:
        drops = results['drops']
        rows.append((f'dropped frames over {drops["stream_s"] / 60:.1f} min',
                     f'{drops["dropped"]} of {drops["processed"] + drops["dropped"]}',
                     '0', _verdict(drops['dropped'] == 0)))
    for target in ('engine', 'node'):
        if f'rss_{target}' in results:
            rss = results[f'rss_{target}']
            rows.append((f'RSS growth over {rss["audio_s"] / 60:.0f} min of audio ({target})',
                         f'{rss["growth_mb"]:+.2f} MB ({rss["before_mb"]:.0f} -> '
                         f'{rss["after_mb"]:.0f} MB, {rss["realtime_factor"]:.0f}x real time)',
                         f'< {TARGET_RSS_GROWTH_MB:.0f} MB',
                         _verdict(rss['growth_mb'] < TARGET_RSS_GROWTH_MB)))
    return rows


def print_table(rows: List[Tuple[str, ...]]) -> None:
    """Print rows as an aligned text table under a header."""
    header = ('figure', 'measured', 'target', 'verdict')
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(4)]
    line = '  '.join('-' * w for w in widths)
    print(line)
    for row in [header] + rows:
        print('  '.join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
        if row is header:
            print(line)
    print(line)


def parse_arguments(argv: Optional[List[str]]) -> argparse.Namespace:
    """Parse the command line; --quick shortens the stream and the RSS run."""
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n')[1],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument('--parts', default=','.join(ALL_PARTS),
                        help=f'comma-separated subset of {",".join(ALL_PARTS)}')
    parser.add_argument('--minutes', type=float, default=10.0,
                        help='length of the real-time stream (tick, latency, drops)')
    parser.add_argument('--rss-minutes', type=float, default=60.0,
                        help='minutes of audio fed as fast as possible for the RSS part')
    parser.add_argument('--rss-warmup-minutes', type=float, default=2.0,
                        help='minutes of audio fed before the "before" RSS reading')
    parser.add_argument('--rss-targets', default='engine,node',
                        help="'engine' (ROS-free code path), 'node' (ListenerNode in-process)")
    parser.add_argument('--engine-passes', type=int, default=3,
                        help='passes over the speech file for the in-process tick timing')
    parser.add_argument('--quick', action='store_true',
                        help='smoke test: 0.5 min stream, 5 min of audio for RSS (0.5 warm-up)')
    parser.add_argument('--params-file', type=Path,
                        default=REPO / 'config' / 'listener.yaml',
                        help="the listener graph's parameter file")
    parser.add_argument('--model', default=None,
                        help="'prosodic' or a checkpoint directory (default: the file's model)")
    parser.add_argument('--audio', type=Path, default=SPEECH,
                        help='speech file to loop (any rate/channels; converted to 16 kHz mono)')
    parser.add_argument('--startup-timeout', type=float, default=120.0,
                        help='seconds to wait for the graph to come up')
    parser.add_argument('--json', type=Path, default=None, help='also write the figures here')
    parser.add_argument('--verbose', action='store_true', help="show the graph's own log")
    args = parser.parse_args(argv)
    if args.quick:
        args.minutes, args.rss_minutes, args.rss_warmup_minutes = 0.5, 5.0, 0.5
    parts = [p.strip() for p in args.parts.split(',') if p.strip()]
    unknown = sorted(set(parts) - set(ALL_PARTS))
    if unknown:
        parser.error(f'unknown part(s): {", ".join(unknown)}')
    args.parts = parts
    args.rss_targets = [t.strip() for t in args.rss_targets.split(',') if t.strip()]
    if set(args.rss_targets) - {'engine', 'node'}:
        parser.error('--rss-targets takes engine and/or node')
    return args


def _raise_keyboard_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def main(argv: Optional[List[str]] = None) -> int:
    """Run the selected parts, print each figure as it comes and a summary table at the end."""
    args = parse_arguments(argv)
    domain, discovery = configure_ros_environment()
    # Ctrl-C and SIGTERM unwind through the finally blocks that stop the graph process (also
    # when started with SIGINT ignored, e.g. in the background of a script).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    from listener_head_ros.settings import load_listener_settings
    settings = load_listener_settings(args.params_file, model=args.model)
    frame_period_ms = 1e3 / settings.frame_rate
    load = os.getloadavg()
    print(f'listener_head_ros benchmark: model {settings.model}, '
          f'{settings.frame_rate:.0f} Hz frames (period {frame_period_ms:.1f} ms), '
          f'{settings.cpu_threads} torch CPU thread(s)')
    print(f'machine: {os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} '
          f'{load[2]:.2f}; python {sys.version.split()[0]}; ROS_DOMAIN_ID={domain}, '
          f'ROS_AUTOMATIC_DISCOVERY_RANGE={discovery}')
    results: Dict[str, Any] = {}
    try:
        if 'tick' in args.parts:
            print(f'\n[tick] in-process engine, no ROS: {args.engine_passes} pass(es) over '
                  f'{args.audio.name}, simulated real-time arrival, run as fast as possible')
            engine = results['engine_tick'] = bench_engine_tick(settings, args.audio,
                                                                args.engine_passes)
            print(f'  {engine["ticks"]} ticks over {engine["audio_s"]:.0f} s of audio in '
                  f'{engine["wall_s"]:.2f} s: wall p50 {engine["p50_ms"]:.3f} ms, '
                  f'p99 {engine["p99_ms"]:.3f} ms, max {engine["max_ms"]:.3f} ms; '
                  f'CPU p50 {engine["cpu_p50_ms"]:.3f} ms, p99 {engine["cpu_p99_ms"]:.3f} ms')
        if {'tick', 'latency', 'drops'} & set(args.parts):
            print(f'\n[stream] listener graph in its own process; {args.minutes:g} min of '
                  'speech published at real time from this process over DDS')
            with tempfile.TemporaryDirectory(prefix='listener_bench_') as workdir:
                stream = run_stream(args.params_file, settings.model, args.audio, args.minutes,
                                    args.startup_timeout, Path(workdir), args.verbose)
            print(f'  {stream.messages} audio messages published '
                  f'({stream.late_publishes} more than 5 ms late, worst '
                  f'{stream.max_publish_lateness_ms:.1f} ms); {len(stream.receipts)} HeadPose '
                  'received')
            if 'tick' in args.parts:
                ticks = results['node_tick'] = analyse_ticks(stream)
                print('[tick] node, from /diagnostics at the end of the stream (window: last '
                      f'3000 ticks): wall p50 {_fmt(ticks.get("diag_p50_ms", math.nan), 3)} ms,'
                      f' p99 {_fmt(ticks.get("diag_p99_ms", math.nan), 3)} ms; CPU p50 '
                      f'{_fmt(ticks.get("diag_cpu_p50_ms", math.nan), 3)} ms, p99 '
                      f'{_fmt(ticks.get("diag_cpu_p99_ms", math.nan), 3)} ms; worst reported '
                      f'p99 {_fmt(ticks.get("diag_max_p99_ms", math.nan), 3)} ms')
                if 'log_ticks' in ticks:
                    print(f'  node, all {ticks["log_ticks"]} ticks of the stream (tick log): '
                          f'wall p50 {ticks["log_p50_ms"]:.3f} ms, p99 '
                          f'{ticks["log_p99_ms"]:.3f} ms, max {ticks["log_max_ms"]:.3f} ms; '
                          f'CPU p50 {ticks["log_cpu_p50_ms"]:.3f} ms, '
                          f'p99 {ticks["log_cpu_p99_ms"]:.3f} ms')
            if 'latency' in args.parts:
                latency = results['latency'] = analyse_latency(stream)
                print(f'[latency] {latency.get("hops", 0)} hops: audio publish -> HeadPose '
                      f'receipt p50 {_fmt(latency.get("p50_ms", math.nan), 1)} ms, p99 '
                      f'{_fmt(latency.get("p99_ms", math.nan), 1)} ms, max '
                      f'{_fmt(latency.get("max_ms", math.nan), 1)} ms (target p50 <= '
                      f'{frame_period_ms + TARGET_E2E_MARGIN_MS:.1f} ms)')
                if latency.get('hops'):
                    print(f'  of which audio publish -> pose stamped in the node p50 '
                          f'{latency["node_p50_ms"]:.1f} / p99 {latency["node_p99_ms"]:.1f} '
                          f'ms; pose stamp -> receipt callback p50 '
                          f'{latency["pose_p50_ms"]:.2f} / p99 {latency["pose_p99_ms"]:.2f} ms'
                          + (f' (DDS reception p50 {latency["dds_p50_ms"]:.2f} / p99 '
                             f'{latency["dds_p99_ms"]:.2f} ms)' if 'dds_p50_ms' in latency
                             else ''))
                    print(f'  per pose, age of the newest audio it reflects: p50 '
                          f'{latency["age_p50_ms"]:.1f} ms, p99 {latency["age_p99_ms"]:.1f} ms;'
                          f' poses not received: {latency["missing_poses"]}')
                for problem in latency.get('problems', []) + (
                        [latency['problem']] if 'problem' in latency else []):
                    print(f'  WARNING: bookkeeping not exact: {problem}')
            if 'drops' in args.parts:
                drops = results['drops'] = analyse_drops(stream)
                print(f'[drops] over {drops["stream_s"]:.0f} s: dropped frames '
                      f'{drops["dropped"]}, frames processed {drops["processed"]} (expected '
                      f'{drops["expected"]} whole hops); audio messages received '
                      f'{drops["messages_received"]} of {drops["messages_published"]}; '
                      f'ring-buffer overflow {drops["overflow_samples"]} samples')
        if 'rss' in args.parts:
            for target in args.rss_targets:
                print(f'\n[rss] {target}: {args.rss_warmup_minutes:g} min warm-up, then '
                      f'{args.rss_minutes:g} min of audio as fast as possible ...', flush=True)
                if target == 'engine':
                    rss = bench_rss_engine(settings, args.audio, args.rss_minutes,
                                           args.rss_warmup_minutes)
                else:
                    rss = bench_rss_node(args.params_file, settings.model, args.audio,
                                         args.rss_minutes,
                                         args.rss_warmup_minutes)
                results[f'rss_{target}'] = rss
                trace = ', '.join(f'{m:.1f} min {mb:.1f}' for m, mb in rss['trace'])
                print(f'  RSS {rss["before_mb"]:.1f} MB -> {rss["after_mb"]:.1f} MB '
                      f'(growth {rss["growth_mb"]:+.2f} MB) over {rss["audio_s"]:.0f} s of '
                      f'audio in {rss["wall_s"]:.1f} s = {rss["realtime_factor"]:.0f}x real '
                      f'time; {rss["frames_stepped"]} frames stepped, '
                      f'{rss["frames_dropped"]} dropped')
                print(f'  RSS trace (MB): {trace}')
    except KeyboardInterrupt:
        print('\ninterrupted', file=sys.stderr)
        return 130
    except RuntimeError as error:
        print(f'\nbenchmark failed: {error}', file=sys.stderr)
        return 1
    print('\nsummary (targets for the embedded default; a benchmark, not a test):')
    print_table(summary_rows(results, frame_period_ms))
    print('\nfull run: python benchmarks/bench_listener.py  (10 min stream, 1 h of audio for RSS)')
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2, default=float))
    return 0


if __name__ == '__main__':
    sys.exit(main())
