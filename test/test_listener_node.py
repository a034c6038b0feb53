"""
Integration tests of the listener lifecycle node with real rclpy over real DDS.

Audio comes from another process (the package's audio file publisher, or a small script), the
node runs in this process under a MultiThreadedExecutor, and a probe node records what it
publishes. Bad inputs are published from this process.
"""

from contextlib import contextmanager
from functools import partial
import gc
import json
import math
import os
from pathlib import Path
import pickle
import signal
import subprocess
import sys
import threading
import time
import weakref

import numpy as np
import pytest

rclpy = pytest.importorskip('rclpy')
audio_msgs = pytest.importorskip('audio_common_msgs.msg')
listener_msgs = pytest.importorskip('listener_head_ros.msg')
soundfile = pytest.importorskip('soundfile')

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus  # noqa: E402
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor  # noqa: E402
from rclpy.lifecycle import TransitionCallbackReturn  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy  # noqa: E402
from rosgraph_msgs.msg import Clock  # noqa: E402
import soxr  # noqa: E402
from std_msgs.msg import Bool  # noqa: E402

import polling  # noqa: E402
from listener_head_ros.audio.pcm import encode_pcm  # noqa: E402
from listener_head_ros.models.checkpoint import save_prosodic_checkpoint  # noqa: E402
from listener_head_ros.models.prosodic import ProsodicListenerConfig  # noqa: E402
from listener_head_ros.motion.pose_shaping import MotionLimits  # noqa: E402
from listener_head_ros.ros.listener_node import (  # noqa: E402
    GIL_SWITCH_INTERVAL, ListenerNode)

AudioData, AudioInfo = audio_msgs.AudioData, audio_msgs.AudioInfo
HeadPose, FacialReaction = listener_msgs.HeadPose, listener_msgs.FacialReaction
Backchannel = listener_msgs.Backchannel

ROOT = Path(__file__).resolve().parents[1]
SPEECH = ROOT / 'listener_head_ros' / 'data' / 'speech_en.wav'
RATE = 16000
TIMEOUT = 10.0
LIMITS = MotionLimits()
LATCHED = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL,
                     reliability=ReliabilityPolicy.RELIABLE)
FAST_DIAGNOSTICS = {'diagnostics_period': 0.2}

# Publishes audio segments described by a JSON list, each after its own AudioInfo, at real time.
SOURCE_SCRIPT = '''
import json, sys, time
import numpy as np, rclpy, soundfile
from audio_common_msgs.msg import AudioData, AudioInfo
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from listener_head_ros.audio.pcm import encode_pcm

rclpy.init()
node = rclpy.create_node('test_audio_source')
latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL,
                     reliability=ReliabilityPolicy.RELIABLE)
info_publisher = node.create_publisher(AudioInfo, 'audio_info', latched)
audio_publisher = node.create_publisher(AudioData, 'audio', 10)
deadline = time.monotonic() + 10.0
while audio_publisher.get_subscription_count() == 0 and time.monotonic() < deadline:
    time.sleep(0.02)
rng = np.random.default_rng(0)
for segment in json.loads(sys.argv[1]):
    info = segment['info']
    info_publisher.publish(AudioInfo(**info))
    time.sleep(0.3)  # AudioInfo and AudioData are separate topics: let the info land first
    if info['coding_format'] == 'mp3':
        chunks = [bytes([0xFF, 0xFB, 0x90, 0x64]) + rng.bytes(413)
                  for _ in range(int(segment['seconds'] / 0.026))]
        period = 0.026
    else:
        samples, rate = soundfile.read(segment['wav'], dtype='float32', always_2d=True)
        frames = int(0.032 * rate)
        chunks = [encode_pcm(samples[i:i + frames], info['sample_format'])
                  for i in range(0, len(samples), frames)]
        period = frames / rate
    print('segment', info['sample_format'], info['coding_format'], flush=True)
    start = time.monotonic()
    for index, chunk in enumerate(chunks):
        audio_publisher.publish(AudioData(data=chunk))
        time.sleep(max(0.0, start + (index + 1) * period - time.monotonic()))
print('done', flush=True)
node.destroy_node()
rclpy.shutdown()
'''


class Recorder:
    """A probe node that records the listener's outputs with their arrival times."""

    def __init__(self, context):
        self.node = rclpy.create_node('listener_probe', context=context)
        self.poses, self.faces, self.backchannels, self.diagnostics = [], [], [], []
        self.node.create_subscription(HeadPose, 'head_pose', self._record(self.poses), 100)
        self.node.create_subscription(
            FacialReaction, 'facial_reaction', self._record(self.faces), 100)
        self.node.create_subscription(
            Backchannel, 'backchannel', self._record(self.backchannels), 100)
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self._on_diagnostics, 50)
        self.audio = self.node.create_publisher(AudioData, 'audio', 100)
        self.info = self.node.create_publisher(AudioInfo, 'audio_info', LATCHED)
        self.speaking = self.node.create_publisher(Bool, 'robot_speaking', 10)
        self.clock = self.node.create_publisher(Clock, '/clock', 10)

    @staticmethod
    def _record(store):
        return lambda msg: store.append((time.monotonic(), msg))

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name.endswith(': listener'):
                values = {kv.key: kv.value for kv in status.values}
                self.diagnostics.append((time.monotonic(), status, values))

    def last(self, key: str, default: str = '') -> str:
        """Return the value of ``key`` in the latest diagnostics, or ``default``."""
        return self.diagnostics[-1][2].get(key, default) if self.diagnostics else default

    def count(self, key: str) -> int:
        """Return the latest diagnostics counter ``key`` as an int (0 before any)."""
        return int(self.last(key, '0'))

    def fresh_diagnostics(self, after: float) -> bool:
        """Return whether diagnostics arrived after the monotonic time ``after``."""
        return bool(self.diagnostics) and self.diagnostics[-1][0] > after

    def poses_since(self, since: float) -> list:
        """Return the HeadPose messages that arrived after ``since``."""
        return [msg for t, msg in list(self.poses) if t > since]

    def publish_audio(self, data: bytes) -> None:
        """Publish one AudioData message."""
        self.audio.publish(AudioData(data=data))


class Harness:
    """A listener node, a recorder and a MultiThreadedExecutor spinning in a thread."""

    def __init__(self, context, **parameters):
        overrides = [Parameter(name, value=value) for name, value in parameters.items()]
        self.node = ListenerNode(context=context, parameter_overrides=overrides)
        self.recorder = Recorder(context)
        self.executor = MultiThreadedExecutor(num_threads=4, context=context)
        self.executor.add_node(self.node)
        self.executor.add_node(self.recorder.node)
        self.errors: list = []
        self.thread = threading.Thread(target=self._spin, daemon=True)
        self.thread.start()

    def _spin(self) -> None:
        try:
            self.executor.spin()
        except ExternalShutdownException:
            pass
        except Exception as error:  # a callback raised: the test must fail
            self.errors.append(error)

    def start(self) -> None:
        """Configure and activate the node, then wait until it is connected."""
        assert self.node.trigger_configure() == TransitionCallbackReturn.SUCCESS
        assert self.node.trigger_activate() == TransitionCallbackReturn.SUCCESS
        assert wait_for(lambda: self.recorder.audio.get_subscription_count() > 0
                        and self.recorder.poses), 'the listener is not connected'

    def state(self) -> str:
        """Return the label of the node's lifecycle state."""
        return self.node._state_machine.current_state[1]

    def close(self) -> None:
        """Stop spinning and destroy the nodes."""
        self.executor.shutdown()
        self.thread.join(timeout=TIMEOUT)
        self.recorder.node.destroy_node()
        self.node.destroy_node()


@contextmanager
def listener(context, start: bool = True, **parameters):
    """Yield a running Harness (configured and active unless ``start`` is false)."""
    switch_interval = sys.getswitchinterval()
    sys.setswitchinterval(GIL_SWITCH_INTERVAL)  # as the node's and the graph's entry points do
    harness = Harness(context, **{**FAST_DIAGNOSTICS, **parameters})
    try:
        if start:
            harness.start()
        yield harness
        assert not harness.errors, f'a callback raised: {harness.errors!r}'
    finally:
        harness.close()
        sys.setswitchinterval(switch_interval)


wait_for = partial(polling.wait_for, timeout=TIMEOUT)


def assert_safe_poses(poses: list) -> None:
    """Check that every HeadPose is finite, inside the limits and under the speed limit."""
    assert poses
    for _, msg in poses:
        angles = np.array([msg.roll, msg.pitch, msg.yaw])
        velocity = np.array([msg.angular_velocity.x, msg.angular_velocity.y,
                             msg.angular_velocity.z])
        assert np.all(np.isfinite(angles)) and np.all(np.isfinite(velocity)), msg
        assert np.all(angles >= LIMITS.lower - 1e-12), angles
        assert np.all(angles <= LIMITS.upper + 1e-12), angles
        assert msg.has_angular_velocity
        assert np.all(np.abs(velocity) <= LIMITS.max_angular_velocity + 1e-9), velocity


def subprocess_env() -> dict:
    """Return the environment of a child process: this one's, with the source tree first."""
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(filter(None, [str(ROOT), env.get('PYTHONPATH')]))
    return env


@contextmanager
def audio_process(args: list):
    """Run an audio publisher in another process; kill it if the test ends early."""
    process = subprocess.Popen([sys.executable, *args], env=subprocess_env(), cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()


def stop(process) -> None:
    """Stop a looping audio publisher with Ctrl-C; it must exit cleanly."""
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=TIMEOUT) == 0


def run_source_script(tmp_path: Path, segments: list):
    """Return audio_process running SOURCE_SCRIPT on ``segments``."""
    script = tmp_path / 'audio_source.py'
    script.write_text(SOURCE_SCRIPT)
    return audio_process([str(script), json.dumps(segments)])


def speech(seconds: float, offset: float = 0.0) -> np.ndarray:
    """Return ``seconds`` of the bundled speech, mono float32 at 16 kHz."""
    samples, rate = soundfile.read(SPEECH, dtype='float32')
    assert rate == RATE
    return samples[int(offset * RATE):int((offset + seconds) * RATE)]


def write_wav(path: Path, seconds: float, rate: int = RATE, stereo: bool = False) -> Path:
    """Write bundled speech as a wav file at ``rate`` (stereo: left speech, right half level)."""
    mono = speech(seconds)
    if rate != RATE:
        mono = soxr.resample(mono, RATE, rate).astype(np.float32)
    samples = np.stack([mono, 0.5 * mono], axis=1) if stereo else mono
    soundfile.write(path, samples, rate, subtype='FLOAT')
    return path


def info(sample_format: str = 'S16LE', rate: int = RATE, channels: int = 1,
         coding_format: str = 'wave') -> dict:
    """Return AudioInfo fields as a dict."""
    return {'channels': channels, 'sample_rate': rate, 'sample_format': sample_format,
            'coding_format': coding_format, 'bitrate': 0}


def measure_while_playing(harness: Harness, process, window: float = 2.0) -> list:
    """Wait for audio to reach the model, then return the poses of the next ``window`` s."""
    recorder = harness.recorder
    assert wait_for(lambda: recorder.count('frames processed') > 0), (
        'no audio reached the model: ' + (process.poll() is not None and process.stderr.read()
                                          or 'publisher still running'))
    start = time.monotonic()
    assert wait_for(lambda: time.monotonic() > start + window)
    return [(t, msg) for t, msg in list(recorder.poses) if start < t <= start + window]


def test_s16le_16k_mono_from_another_process(rclpy_context, tmp_path):
    """S16LE 16 kHz mono from another process moves the head at about the frame rate."""
    wav = write_wav(tmp_path / 'speech.wav', 2.5)
    with listener(rclpy_context) as harness, audio_process(
            ['-m', 'listener_head_ros.ros.audio_file_publisher', str(wav), '--loop']) as process:
        window = measure_while_playing(harness, process)
        assert len(window) >= 40, f'{len(window)} poses in 2 s'
        pitch = [msg.pitch for _, msg in window]
        assert np.ptp(pitch) > 1e-3, 'the head does not move while speech plays'
        stop(process)
        recorder = harness.recorder
        assert wait_for(lambda: recorder.last('input format') == 'S16LE 16000 Hz x1 (wave)')
        assert recorder.count('malformed messages') == 0
        assert recorder.count('rejected messages') == 0
        assert recorder.last('model') == 'prosodic' and recorder.last('device') == 'cpu'
        assert float(recorder.diagnostics[-1][2]['tick compute p99 (ms)']) > 0
        assert_safe_poses(recorder.poses)
        assert len(recorder.faces) > 0 and len(recorder.faces[-1][1].blendshape_names) == 52


def test_f32le_48k_stereo_from_another_process(rclpy_context, tmp_path):
    """F32LE 48 kHz stereo is resampled and down-mixed, and moves the head."""
    wav = write_wav(tmp_path / 'speech48.wav', 2.0, rate=48000, stereo=True)
    with listener(rclpy_context) as harness, audio_process(
            ['-m', 'listener_head_ros.ros.audio_file_publisher', str(wav),
             '--sample-format', 'F32LE', '--chunk', '1536', '--loop']) as process:
        window = measure_while_playing(harness, process, window=1.5)
        assert len(window) >= 30 and np.ptp([msg.pitch for _, msg in window]) > 1e-3
        recorder = harness.recorder
        assert recorder.last('input format') == 'F32LE 48000 Hz x2 (wave)', recorder.diagnostics
        assert any(float(v['input sample rate (Hz)']) > 30000 for _, _, v in recorder.diagnostics)
        stop(process)
        assert recorder.count('frames processed') > 30
        assert recorder.count('malformed messages') == 0
        assert recorder.count('non-finite samples replaced') == 0
        assert_safe_poses(recorder.poses)


def test_mid_stream_audio_info_change(rclpy_context, tmp_path):
    """A switch from S16LE 16 kHz mono to F32LE 48 kHz stereo decodes both parts."""
    segments = [
        {'info': info(), 'wav': str(write_wav(tmp_path / 'a.wav', 1.5))},
        {'info': info('F32LE', 48000, 2),
         'wav': str(write_wav(tmp_path / 'b.wav', 1.5, rate=48000, stereo=True))},
    ]
    with listener(rclpy_context) as harness, run_source_script(tmp_path, segments) as process:
        assert process.wait(timeout=2 * TIMEOUT) == 0, process.stderr.read()
        recorder = harness.recorder
        done = time.monotonic()
        assert wait_for(lambda: recorder.fresh_diagnostics(done))
        history = [values for _, _, values in recorder.diagnostics]
        first = [v for v in history if v['input format'] == 'S16LE 16000 Hz x1 (wave)'
                 and 8000 < float(v['input sample rate (Hz)']) < 24000]
        second = [v for v in history if v['input format'] == 'F32LE 48000 Hz x2 (wave)'
                  and float(v['input sample rate (Hz)']) > 30000]
        assert first and second, history
        assert int(second[-1]['frames processed']) > int(first[0]['frames processed']) + 20
        assert recorder.last('input format') == 'F32LE 48000 Hz x2 (wave)'
        assert recorder.count('malformed messages') == 0
        # The fallback (the input.* parameters) already is S16LE 16 kHz mono: one real change.
        assert harness.node.audio_input.stats.format_changes == 1
        assert_safe_poses(recorder.poses)


def test_mp3_is_rejected_and_nothing_is_garbled(rclpy_context, tmp_path):
    """mp3 AudioInfo gives an ERROR diagnostic with the format:=wave hint; the head stays put."""
    segments = [{'info': info(coding_format='mp3'), 'seconds': 1.0}]
    with listener(rclpy_context) as harness, run_source_script(tmp_path, segments) as process:
        recorder = harness.recorder
        assert wait_for(lambda: recorder.count('rejected messages') > 10)
        status = recorder.diagnostics[-1][1]
        assert status.level == DiagnosticStatus.ERROR
        assert 'format:=wave' in status.message and 'mp3' in status.message
        assert process.wait(timeout=TIMEOUT) == 0
        assert recorder.count('frames processed') == 0
        assert recorder.last('input format') == 'S16LE 16000 Hz x1 (mp3)'
        assert all((msg.roll, msg.pitch, msg.yaw) == (0.0, 0.0, 0.0) for _, msg in recorder.poses)
        assert not recorder.backchannels


def test_bad_messages_are_counted_and_survived(rclpy_context):
    """Empty, partial-frame and NaN/Inf messages are counted; the node keeps publishing."""
    with listener(rclpy_context) as harness:
        recorder, node = harness.recorder, harness.node

        def still_publishing() -> None:
            now = time.monotonic()
            assert wait_for(lambda: len(recorder.poses_since(now)) >= 3), 'the node stopped'

        for _ in range(5):
            recorder.publish_audio(b'')
            time.sleep(0.005)
        assert wait_for(lambda: recorder.count('empty messages') == 5)
        still_publishing()

        recorder.publish_audio(bytes(3))
        recorder.publish_audio(bytes(1001))
        assert wait_for(lambda: recorder.count('malformed messages') == 2)
        status = recorder.diagnostics[-1][1]
        assert status.level == DiagnosticStatus.WARN and 'leftover bytes' in status.message
        still_publishing()

        recorder.info.publish(AudioInfo(**info('F32LE')))
        assert wait_for(lambda: recorder.last('input format') == 'F32LE 16000 Hz x1 (wave)')
        frames_before = recorder.count('frames processed')
        audio = speech(0.5).copy()
        audio[::7] = np.nan
        audio[1::50] = np.inf
        audio[2::50] = -np.inf
        bad = int(np.count_nonzero(~np.isfinite(audio)))
        for chunk in np.array_split(audio.astype('<f4'), 8):
            recorder.publish_audio(chunk.tobytes())
            time.sleep(0.02)
        assert wait_for(lambda: recorder.count('non-finite samples replaced') == bad)
        assert wait_for(lambda: recorder.count('frames processed') >= frames_before + 12)
        still_publishing()
        assert node.audio_input.stats.malformed_messages == 2
        assert_safe_poses(recorder.poses)
        assert all(np.all(np.isfinite(msg.blendshape_weights)) for _, msg in recorder.faces)


def test_long_chunks_are_refused_and_drops_are_blamed_on_the_burst(rclpy_context):
    """A 10 s chunk is refused whole; a 1.5 s one drops frames blamed on the burst."""
    with listener(rclpy_context, neutral_return_timeout=0.5, neutral_return_time=0.3) as harness:
        recorder = harness.recorder
        long_chunk = encode_pcm(speech(10.0), 'S16LE')
        assert wait_for(lambda: recorder.count('oversized messages') >= 1,
                        publish=lambda: recorder.publish_audio(long_chunk)), 'lost 10 s chunk'
        assert recorder.count('frames processed') == 0
        burst = encode_pcm(speech(1.5, offset=3.0), 'S16LE')
        assert wait_for(lambda: recorder.count('dropped frames') > 0,
                        publish=lambda: recorder.publish_audio(burst))
        assert wait_for(lambda: 'bursts longer than max_latency' in
                        recorder.diagnostics[-1][1].message)
        assert recorder.count('dropped frames (inference too slow)') == 0
        assert recorder.count('dropped frames (audio burst)') == recorder.count('dropped frames')
        burst_end = time.monotonic()
        assert wait_for(lambda: len(recorder.poses_since(burst_end)) >= 5), 'the node stopped'
        assert_safe_poses(recorder.poses)


def test_ragged_chunks_are_caught_up_without_drops(rclpy_context):
    """Chunks of 181 ms (5.4 frames each) at real time: every frame stepped, none dropped."""
    with listener(rclpy_context) as harness:
        recorder, node = harness.recorder, harness.node
        audio = speech(4.0)
        chunk = int(0.181 * RATE)
        for start in range(0, audio.size - chunk + 1, chunk):
            recorder.publish_audio(encode_pcm(audio[start:start + chunk], 'S16LE'))
            time.sleep(0.181)
        stepped = (audio.size // chunk) * chunk // node.engine.model.hop_length
        assert wait_for(lambda: node.engine.frames_stepped >= stepped - 1)
        assert node.engine.frames_dropped == 0
        assert wait_for(lambda: recorder.count('frames processed') >= stepped - 1)
        assert recorder.count('dropped frames') == 0
        assert 'dropped' not in recorder.diagnostics[-1][1].message


def test_robot_speaking_mutes_and_returns_to_neutral(rclpy_context):
    """While robot_speaking is true, audio is discarded, nothing nods and the head recentres."""
    with listener(rclpy_context, neutral_return_time=0.3) as harness:
        recorder = harness.recorder
        audio = encode_pcm(speech(6.0), 'S16LE')
        chunk, period = 1066, 533 / RATE
        position = 0

        def play(seconds: float) -> None:
            nonlocal position
            end = time.monotonic() + seconds
            while time.monotonic() < end and position < len(audio):
                recorder.publish_audio(audio[position:position + chunk])
                position += chunk
                time.sleep(period)

        play(1.0)
        assert wait_for(lambda: recorder.count('frames processed') > 10)
        assert any(abs(msg.pitch) > 1e-3 for _, msg in recorder.poses)
        recorder.speaking.publish(Bool(data=True))
        assert wait_for(lambda: harness.node.engine.robot_speaking)
        muted_at = time.monotonic()
        play(2.0)
        assert wait_for(lambda: recorder.last('robot speaking') == 'True'
                        and recorder.count('muted messages') > 20)
        frames = recorder.count('frames processed')
        assert not [m for t, m in recorder.backchannels if t > muted_at + 0.1]
        recent = recorder.poses_since(time.monotonic() - 0.8)
        assert recent and all(abs(m.roll) + abs(m.pitch) + abs(m.yaw) < 1e-9 for m in recent)
        assert recorder.count('frames processed') == frames
        recorder.speaking.publish(Bool(data=False))
        assert wait_for(lambda: not harness.node.engine.robot_speaking)
        play(0.5)
        assert wait_for(lambda: recorder.count('frames processed') > frames)
        assert_safe_poses(recorder.poses)


def _garbage_checkpoint(tmp_path: Path) -> Path:
    directory = save_prosodic_checkpoint(tmp_path / 'garbage', ProsodicListenerConfig())
    (directory / 'model.safetensors').write_bytes(os.urandom(300))
    return directory


class _ShellOnUnpickle:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f'touch {self.marker}',)


def _pickle_checkpoint(tmp_path: Path) -> Path:
    directory = save_prosodic_checkpoint(tmp_path / 'pickled', ProsodicListenerConfig())
    payload = pickle.dumps({'weights': _ShellOnUnpickle(tmp_path / 'pwned')})
    (directory / 'model.safetensors').write_bytes(payload)
    return directory


@pytest.mark.parametrize('name, parameters, message', [
    ('missing checkpoint', lambda p: {'model': str(p / 'nowhere')}, 'does not exist'),
    ('corrupt checkpoint', lambda p: {'model': str(_garbage_checkpoint(p))},
     'is not a readable safetensors file'),
    ('pickle checkpoint', lambda p: {'model': str(_pickle_checkpoint(p))},
     'never unpickled'),
    ('bad sample format', lambda p: {'input.sample_format': 'XYZ'},
     "unsupported sample_format 'XYZ'"),
    ('bad channel', lambda p: {'input.channel': 'left'}, "channel must be 'mean'"),
    ('bad device', lambda p: {'device': 'gpu'}, 'device must be one of'),
])
def test_configure_fails_cleanly(rclpy_context, tmp_path, capfd, name, parameters, message):
    """A bad checkpoint or parameter fails configure with a clear log; the node stays usable."""
    with listener(rclpy_context, start=False, **parameters(tmp_path)) as harness:
        node = harness.node
        publishers = len(list(node.publishers))
        assert node.trigger_configure() == TransitionCallbackReturn.FAILURE, name
        assert harness.state() == 'unconfigured'
        assert node.engine is None
        assert len(list(node.publishers)) == publishers
        assert not (tmp_path / 'pwned').exists(), 'the pickle was executed'
        err = capfd.readouterr().err
        assert '[listener]: ' in err and message in err, err
        node.set_parameters([Parameter('model', value='prosodic'),
                             Parameter('input.sample_format', value='S16LE'),
                             Parameter('input.channel', value='mean'),
                             Parameter('device', value='cpu')])
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
        assert harness.state() == 'inactive'


def test_configure_loads_a_checkpoint_directory(rclpy_context, tmp_path):
    """A valid checkpoint directory as 'model' configures and runs."""
    directory = save_prosodic_checkpoint(tmp_path / 'ckpt', ProsodicListenerConfig(seed=3))
    with listener(rclpy_context, model=str(directory)) as harness:
        assert harness.node.engine.model.config.seed == 3
        assert wait_for(lambda: harness.recorder.last('model') == 'prosodic')


def _entity_counts(node) -> tuple:
    return tuple(len(list(entities)) for entities in (
        node.subscriptions, node.timers, node.publishers, node.services, node.clients,
        node.guards))


def _own_threads() -> int:
    return sum(1 for t in threading.enumerate() if not t.name.startswith('ThreadPoolExecutor'))


def test_activate_deactivate_cycles_leak_nothing(rclpy_context):
    """Activate/deactivate cycles under a spinning executor leave no entity or thread behind."""
    with listener(rclpy_context, start=False) as harness:
        node, recorder = harness.node, harness.recorder
        unconfigured = _entity_counts(node)
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
        inactive = _entity_counts(node)
        threads = _own_threads()
        active = None
        for cycle in range(40):
            assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS, cycle
            assert harness.state() == 'active'
            now = time.monotonic()
            assert wait_for(lambda: recorder.poses_since(now)), (
                f'no pose in cycle {cycle}', harness.errors, harness.thread.is_alive())
            active = active or _entity_counts(node)
            assert _entity_counts(node) == active, cycle
            assert node.trigger_deactivate() == TransitionCallbackReturn.SUCCESS, cycle
            assert harness.state() == 'inactive'
            assert _entity_counts(node) == inactive, cycle
            assert _own_threads() == threads, cycle
        # audio, audio_info, robot_speaking, robot_audio, robot_audio_info; tick, diagnostics
        assert active[0] == inactive[0] + 5 and active[1] == inactive[1] + 2
        pool = [t for t in threading.enumerate() if t.name.startswith('ThreadPoolExecutor')]
        assert len(pool) <= 4
        engine = weakref.ref(node.engine)
        model = weakref.ref(node.engine.model)
        assert node.trigger_cleanup() == TransitionCallbackReturn.SUCCESS
        assert harness.state() == 'unconfigured'
        assert node.engine is None and node.audio_input is None
        gc.collect()
        assert engine() is None and model() is None, 'cleanup did not free the model'
        assert _entity_counts(node) == unconfigured
        for _ in range(10):  # a tick in flight during cleanup once stopped the executor
            assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
            assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
            now = time.monotonic()
            assert wait_for(lambda: recorder.poses_since(now)), (
                harness.errors, harness.thread.is_alive())
            assert node.trigger_deactivate() == TransitionCallbackReturn.SUCCESS
            assert node.trigger_cleanup() == TransitionCallbackReturn.SUCCESS
        assert _entity_counts(node) == unconfigured
        assert harness.thread.is_alive() and not harness.errors, harness.errors


def test_stamps_follow_sim_time(rclpy_context):
    """With use_sim_time the header stamps come from /clock."""
    with listener(rclpy_context, start=False, use_sim_time=True) as harness:
        recorder = harness.recorder
        assert harness.node.trigger_configure() == TransitionCallbackReturn.SUCCESS
        assert harness.node.trigger_activate() == TransitionCallbackReturn.SUCCESS
        sim = {'ns': 4242 * 10 ** 9}

        def publish_clock() -> None:
            sim['ns'] += 10 ** 7
            msg = Clock()
            msg.clock.sec, msg.clock.nanosec = divmod(sim['ns'], 10 ** 9)
            recorder.clock.publish(msg)

        assert wait_for(lambda: len(recorder.poses) >= 5, publish=publish_clock)
        for _, msg in recorder.poses:
            assert 4242 <= msg.header.stamp.sec < 4242 + 60, msg.header.stamp
        assert recorder.faces and recorder.faces[-1][1].header.stamp.sec >= 4242
        assert math.isclose(harness.node.get_clock().now().nanoseconds / 1e9, sim['ns'] / 1e9,
                            abs_tol=5.0)


def test_a_typo_in_the_parameter_file_fails_configure_naming_the_fix(rclpy_context, tmp_path,
                                                                     capfd):
    """An unknown key in the node's parameter file is not ignored: configure says what fits."""
    params = tmp_path / 'typo.yaml'
    params.write_text('/**/listener:\n  ros__parameters:\n    frame_rte: 25.0\n'
                      '    limits:\n      max_angular_velcity: 2.0\n')
    node = ListenerNode(context=rclpy_context,
                        cli_args=['--ros-args', '--params-file', str(params)])
    try:
        assert node.trigger_configure() == TransitionCallbackReturn.FAILURE
        assert node.listener is None
        err = capfd.readouterr().err
        assert "unknown parameter 'frame_rte' (did you mean 'frame_rate'?)" in err, err
        assert 'limits.max_angular_velcity' in err
    finally:
        node.destroy_node()


def test_a_nan_weight_checkpoint_is_an_error_on_diagnostics(rclpy_context, tmp_path, capfd):
    """With NaN weights poses stay finite, /diagnostics says ERROR with the count, once."""
    import torch
    from listener_head_ros.models.learned import save_learned_checkpoint
    from listener_head_ros.models.registry import build_network
    network = build_network('causal_gru_mdn', {'hidden_size': 8, 'conv_channels': 8,
                                               'num_layers': 1, 'num_mixtures': 1})
    with torch.no_grad():
        network.head.weight.fill_(float('nan'))
    directory = save_learned_checkpoint(tmp_path / 'nan', network)
    with listener(rclpy_context, model=str(directory)) as harness:
        recorder = harness.recorder
        for chunk in np.array_split(speech(1.0), 30):
            recorder.publish_audio(encode_pcm(chunk, 'S16LE'))
            time.sleep(0.01)
        assert wait_for(lambda: recorder.count('non-finite model frames') >= 10)
        status = recorder.diagnostics[-1][1]
        assert status.level == DiagnosticStatus.ERROR and 'non-finite' in status.message
        assert_safe_poses(recorder.poses)
    err = capfd.readouterr().err
    assert err.count('produced a non-finite frame') == 1, err


def _stream_speech(recorder: Recorder, seconds: float) -> None:
    """Publish ``seconds`` of speech in 32 ms chunks at about real time."""
    for chunk in np.array_split(speech(seconds), int(seconds / 0.032)):
        recorder.publish_audio(encode_pcm(chunk, 'S16LE'))
        time.sleep(0.03)


def test_diagnostics_recover_after_a_bad_message(rclpy_context):
    """One malformed message warns for the recent window only; lifetime totals keep it."""
    with listener(rclpy_context, diagnostics_window=1.0) as harness:
        recorder = harness.recorder
        recorder.publish_audio(bytes(1001))
        assert wait_for(lambda: recorder.count('malformed messages') == 1)
        status = recorder.diagnostics[-1][1]
        assert status.level == DiagnosticStatus.WARN and 'bad audio' in status.message
        _stream_speech(recorder, 2.5)
        status, values = recorder.diagnostics[-1][1:]
        assert status.level == DiagnosticStatus.OK, status.message
        assert values['malformed messages'] == '1' and values['recent malformed messages'] == '0'
        assert float(values['recent window (s)']) <= 1.5


def test_no_audio_and_bad_audio_are_both_reported(rclpy_context):
    """Health names every problem of the window: bad audio does not hide 'no audio arriving'."""
    with listener(rclpy_context, diagnostics_window=5.0) as harness:
        recorder = harness.recorder
        recorder.publish_audio(bytes(1001))
        assert wait_for(lambda: recorder.count('malformed messages') == 1)
        assert wait_for(lambda: 'no audio arriving' in recorder.diagnostics[-1][1].message)
        message = recorder.diagnostics[-1][1].message
        assert 'bad audio' in message, message


@pytest.mark.parametrize('callback, attribute', [('audio', 'audio_input'), ('tick', 'engine')])
def test_an_exception_in_a_callback_is_counted_reported_and_survived(
        rclpy_context, capfd, callback, attribute):
    """A callback that raises (here a MemoryError) is logged, counted and reported as ERROR."""
    with listener(rclpy_context) as harness:
        node, recorder = harness.node, harness.recorder
        target = getattr(node, attribute)
        method = 'push' if callback == 'audio' else 'tick'
        original = getattr(target, method)
        failures = []

        def fail_twice(*args, **kwargs):
            # Fault injection: a real MemoryError needs a memory cap on the whole test process.
            if len(failures) < 2:
                failures.append(1)
                raise MemoryError('injected')
            return original(*args, **kwargs)
        setattr(target, method, fail_twice)
        chunk = encode_pcm(speech(0.1), 'S16LE')
        assert wait_for(lambda: recorder.count('callback errors') == 2,
                        publish=lambda: recorder.publish_audio(chunk))
        status = recorder.diagnostics[-1][1]
        assert status.level == DiagnosticStatus.ERROR and 'callback error' in status.message
        assert 'MemoryError' in status.message, status.message
        now = time.monotonic()
        _stream_speech(recorder, 0.5)
        assert wait_for(lambda: len(recorder.poses_since(now)) >= 5), 'the node stopped'
        assert harness.state() == 'active' and harness.thread.is_alive()
    err = capfd.readouterr().err
    assert f'the {callback} callback failed (1 time(s)' in err and 'Traceback' in err, err


@pytest.mark.parametrize('rate', [1, 4294967295])
def test_an_absurd_sample_rate_is_refused_and_the_node_keeps_running(rclpy_context, rate):
    """An AudioInfo at 1 Hz or 2^32-1 Hz is refused (ERROR on diagnostics), memory bounded."""
    with listener(rclpy_context) as harness:
        recorder = harness.recorder
        recorder.info.publish(AudioInfo(**info(rate=rate)))
        assert wait_for(lambda: recorder.diagnostics
                        and recorder.diagnostics[-1][1].level == DiagnosticStatus.ERROR)
        assert 'sample_rate' in recorder.diagnostics[-1][1].message
        for _ in range(10):
            recorder.publish_audio(bytes(200_000))
        assert wait_for(lambda: recorder.count('rejected messages') >= 5)
        now = time.monotonic()
        assert wait_for(lambda: len(recorder.poses_since(now)) >= 5), 'the node stopped'
        recorder.info.publish(AudioInfo(**info()))
        assert wait_for(lambda: recorder.last('input format') == 'S16LE 16000 Hz x1 (wave)')
        frames = recorder.count('frames processed')
        _stream_speech(recorder, 0.5)
        assert wait_for(lambda: recorder.count('frames processed') >= frames + 10)
        assert_safe_poses(recorder.poses)


def test_live_settings_apply_at_once_and_others_say_they_apply_at_configure(rclpy_context):
    """While active, smoothing and timeouts change the engine; the model and limits are refused."""
    with listener(rclpy_context) as harness:
        node = harness.node
        result, = node.set_parameters([Parameter('smoothing_time_constant', value=0.2)])
        assert result.successful, result.reason
        assert node.engine.config.smoothing_time_constant == 0.2
        assert node.engine.shaper.smoothing_time_constant == 0.2
        result, = node.set_parameters([Parameter('neutral_return_timeout', value=3.0)])
        assert result.successful and node.engine.config.neutral_return_timeout == 3.0
        for name, value in (('limits.pitch_max', 0.1), ('model', '/elsewhere'),
                            ('topics.audio', 'mic')):
            result, = node.set_parameters([Parameter(name, value=value)])
            assert not result.successful and 'applies at configure' in result.reason, name
            assert node.get_parameter(name).value != value
        result, = node.set_parameters([Parameter('max_latency', value=float('nan'))])
        assert not result.successful
        assert node.trigger_deactivate() == TransitionCallbackReturn.SUCCESS
        assert node.trigger_cleanup() == TransitionCallbackReturn.SUCCESS
        result, = node.set_parameters([Parameter('limits.pitch_max', value=0.1)])
        assert result.successful
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
        assert node.engine.config.limits.pitch_max == 0.1
        assert node.engine.config.smoothing_time_constant == 0.2


def test_an_invalid_topic_name_fails_configure_with_its_name_and_leaks_nothing(
        rclpy_context, capfd):
    """topics.head_pose 'bad topic!!' fails configure, logged, five times without a leak."""
    with listener(rclpy_context, start=False, **{'topics.head_pose': 'bad topic!!'}) as harness:
        node = harness.node
        before = _entity_counts(node)
        for _ in range(5):
            assert node.trigger_configure() == TransitionCallbackReturn.FAILURE
            assert harness.state() == 'unconfigured' and node.listener is None
        assert _entity_counts(node) == before
        err = capfd.readouterr().err
        assert err.count("configure failed: topics.head_pose: 'bad topic!!' is not a valid") == 5
        node.set_parameters([Parameter('topics.head_pose', value='head_pose')])
        harness.start()
        assert node.count_publishers('head_pose') == 1


def test_a_failed_activate_is_logged_and_released(rclpy_context, capfd, monkeypatch):
    """An activate that raises fails with its reason logged, and leaves nothing running."""
    with listener(rclpy_context, start=False) as harness:
        node = harness.node
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
        inactive = _entity_counts(node)

        def no_timer(*args, **kwargs):
            # Fault injection: the failure of rcl (or of torch) that activate can meet.
            raise RuntimeError('injected timer failure')
        monkeypatch.setattr(node, 'create_timer', no_timer)
        for _ in range(5):
            assert node.trigger_activate() == TransitionCallbackReturn.FAILURE
            assert harness.state() == 'inactive' and not node._io_active
            assert _entity_counts(node) == inactive
        assert node.count_publishers('head_pose') == 1
        err = capfd.readouterr().err
        assert err.count("activate failed: RuntimeError('injected timer failure')") == 5, err
        monkeypatch.undo()
        assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
        assert wait_for(lambda: harness.recorder.poses)


def _publish_speech(publisher, audio: np.ndarray, chunk: int = 512) -> None:
    """Publish ``audio`` as S16LE AudioData chunks at about real time."""
    for start in range(0, audio.size - chunk + 1, chunk):
        publisher.publish(AudioData(data=encode_pcm(audio[start:start + chunk], 'S16LE')))
        time.sleep(chunk / RATE * 0.95)


def test_a_second_voice_takes_over_mid_dialog(rclpy_context):
    """With ros4hri voices, the head follows Alice, then Bob: one switch, within limits."""
    hri_msgs = pytest.importorskip('hri_msgs.msg')
    with listener(rclpy_context, start=False, **{'topics.voices': '/humans/voices'}) as harness:
        recorder, node = harness.recorder, harness.node
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
        assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
        assert node.count_subscribers('audio') == 0, 'with voices the audio topic is unused'
        probe = recorder.node
        tracked = probe.create_publisher(hri_msgs.IdsList, '/humans/voices/tracked', 1)
        audio = {voice: probe.create_publisher(AudioData, f'/humans/voices/{voice}/audio', 100)
                 for voice in ('alice', 'bob')}
        speaking = {voice: probe.create_publisher(Bool, f'/humans/voices/{voice}/is_speaking',
                                                  10) for voice in ('alice', 'bob')}
        assert wait_for(lambda: recorder.count('voices added') == 2,
                        publish=lambda: tracked.publish(hri_msgs.IdsList(ids=['alice', 'bob'])))
        for publisher in (*audio.values(), *speaking.values()):
            assert wait_for(lambda: publisher.get_subscription_count() > 0)
        speaking['alice'].publish(Bool(data=True))
        _publish_speech(audio['alice'], speech(2.0))
        assert recorder.last('followed voice') == 'alice'
        speaking['alice'].publish(Bool(data=False))
        speaking['bob'].publish(Bool(data=True))
        switched = time.monotonic()
        _publish_speech(audio['bob'], speech(2.5, offset=8.0))
        assert wait_for(lambda: recorder.count('voice switches') == 1)
        assert recorder.last('followed voice') == 'bob'
        # Bob's first words wait for Alice's hold time (0.7 s) and his onset time (0.2 s).
        assert 0 < recorder.count('voice audio dropped (not followed)') <= 0.9 * RATE / 512 + 3
        after = [(m.roll, m.pitch, m.yaw) for m in recorder.poses_since(switched + 1.0)]
        assert len(after) > 20 and np.ptp(np.array(after), axis=0).max() > 1e-3, (
            'the head should move with the new voice')
        assert node.engine.nonfinite_frames == 0
        assert_safe_poses(recorder.poses)


def test_the_robot_answers_with_its_speaking_motion(rclpy_context):
    """robot_speaking plus the robot's own audio: the head moves with it, no backchannel."""
    with listener(rclpy_context, handover_time=0.3) as harness:
        recorder, node = harness.recorder, harness.node
        voice = recorder.node.create_publisher(AudioData, 'robot_audio', 100)
        assert wait_for(lambda: voice.get_subscription_count() > 0)
        _publish_speech(recorder.audio, speech(1.5))
        recorder.speaking.publish(Bool(data=True))
        assert wait_for(lambda: recorder.last('robot speaking') == 'True')
        started = time.monotonic()
        _publish_speech(voice, speech(3.0, offset=12.0))
        ended = time.monotonic()
        recorder.speaking.publish(Bool(data=False))
        assert wait_for(lambda: recorder.count('speaking frames') >= 80)
        during = np.array([(m.roll, m.pitch, m.yaw)
                           for m in recorder.poses_since(started + 0.5) if m.header.stamp])
        during = during[:int(2.0 * 30)]
        assert np.std(during[:, 1]) > 1e-3 or np.std(during[:, 2]) > 1e-3, (
            'the head should move while the robot speaks')
        assert not [b for t, b in recorder.backchannels if started + 0.3 < t < ended]
        assert wait_for(lambda: recorder.last('speaking weight') == '0.00')
        assert recorder.last('speaking model') == 'prosodic_speaker'
        assert node.engine.nonfinite_frames == 0
        assert_safe_poses(recorder.poses)


def _stream_clip(publisher, audio: np.ndarray, chunk: int = 512) -> float:
    """Publish ``audio`` as S16LE chunks, each when its last sample is due; return the start."""
    start = time.monotonic()
    for index, begin in enumerate(range(0, audio.size - chunk + 1, chunk)):
        time.sleep(max(0.0, start + (index + 1) * chunk / RATE - time.monotonic()))
        publisher.publish(AudioData(data=encode_pcm(audio[begin:begin + chunk], 'S16LE')))
    return start


def test_a_learned_facial_checkpoint_drives_face_head_and_hri_messages(rclpy_context,
                                                                       react_face):
    """
    A facial model trained on the synthetic REACT corpus runs in the node over DDS.

    The node hears a held-out speaker clip in real time: FacialReaction's AU12 and smile
    rise after the speaker's utterance ends, as the planted listener's do; HeadPose follows
    the rotation stream within the limits; hri_msgs Expression and FacialActionUnits arrive
    (AUs at their FACS codes); nothing is NaN. Drawing three samples (sampling.*), the node
    follows one reaction per speaker turn. The model is the session's react_face (react_fixture).
    """
    hri_msgs = pytest.importorskip('hri_msgs.msg')
    from react_fixture import smile_masks
    from listener_head_ros.data.react2025 import load_audio
    from listener_head_ros.face import ACTION_UNITS, ARKIT_BLENDSHAPES, facs_number
    dyad = react_face.release().dyads('test')[0]
    audio = load_audio(dyad.path('audio', 'speaker'), RATE)
    seconds = audio.size / RATE
    with listener(rclpy_context, model=str(react_face.checkpoint)) as harness:
        probe, expressions, units = harness.recorder.node, [], []
        probe.create_subscription(hri_msgs.Expression, '/robot_face/expression',
                                  expressions.append, 100)
        probe.create_subscription(hri_msgs.FacialActionUnits, '/robot_face/action_units',
                                  units.append, 100)
        assert wait_for(lambda: expressions and units)
        start = _stream_clip(harness.recorder.audio, audio)
        faces = [(t - start, msg) for t, msg in list(harness.recorder.faces)
                 if start < t < start + seconds]
        poses = [(t, msg) for t, msg in list(harness.recorder.poses) if t > start + 0.5]
        assert wait_for(lambda: harness.recorder.fresh_diagnostics(start + seconds))
        assert 'head: predicted' in harness.recorder.last('model streams')
        assert harness.recorder.count('non-finite model frames') == 0
    assert faces and poses
    assert list(faces[-1][1].action_unit_names) == list(ACTION_UNITS)
    assert list(faces[-1][1].blendshape_names) == list(ARKIT_BLENDSHAPES)
    plateau, away = smile_masks(np.array([t for t, _ in faces]), react_face.utterance_ends(dyad))
    au12 = np.array([m.action_unit_values[ACTION_UNITS.index('AU12')] for _, m in faces])
    smile = np.array([m.blendshape_weights[ARKIT_BLENDSHAPES.index('mouthSmileLeft')]
                      for _, m in faces])
    assert plateau.any() and away.any()
    assert au12[plateau].mean() > au12[away].mean() + 0.1, (au12[plateau], au12[away])
    assert smile[plateau].mean() > smile[away].mean(), (smile[plateau], smile[away])
    assert {m.expression for _, m in faces} >= {'happy', 'neutral'}
    for _, face in faces:
        for values in (face.action_unit_values, face.blendshape_weights):
            assert np.all(np.isfinite(values)) and 0.0 <= min(values) <= max(values) <= 1.0
        assert np.isfinite([face.valence, face.arousal, face.confidence]).all()
    assert_safe_poses(poses)
    assert any(e.expression == 'happy' for e in expressions)
    assert all(np.isfinite([e.valence, e.arousal, e.confidence]).all() for e in expressions)
    moving = [u for u in units if u.intensity[facs_number('AU12')] > 0.35]
    assert moving and all(np.all(np.isfinite(u.intensity)) for u in units)
    reported = {facs_number(name) for name in ACTION_UNITS}
    assert all(u.intensity[c] == 0.0 for u in units for c in range(99) if c not in reported)
    sampling = {'sampling.mode': 'sample', 'sampling.num_samples': 3}
    with listener(rclpy_context, model=str(react_face.checkpoint), reaction_redraw='turn',
                  **sampling) as harness:
        start = _stream_clip(harness.recorder.audio, audio[:int(2.0 * RATE)])
        assert wait_for(lambda: harness.recorder.last('reaction followed').endswith(
            'of 3 (redraw: turn)') and harness.recorder.count('speaker turns') >= 1)
        assert harness.recorder.count('non-finite model frames') == 0
        faces = [msg for t, msg in list(harness.recorder.faces) if t > start]
    assert faces and all(np.all(np.isfinite(f.action_unit_values)) for f in faces)
