"""
Both audio_common_msgs flavours: ros-drivers (uint8[] data) and mgonzs13 (typed arrays).

The typed-array decoding is tested without ROS. Each flavour is then tested against its own
type-identical stand-in: the two share a package name, so the listener runs in a child process
whose paths hold one underlay or the other (audio_flavour_probe.py), over real DDS. Last, the
format reaches the node from a volatile ``audio_info`` (older audio_capture releases) and from a
transient-local one (current releases), with no incompatible QoS on either side.
"""

from contextlib import contextmanager
import json
import os
from pathlib import Path
import signal
import subprocess
import sys

from hypothesis import given, strategies as st
from hypothesis.extra import numpy as hnp
import numpy as np
import pytest
import soundfile

import polling
from listener_head_ros.audio.pcm import (
    AudioFormat, decode_pcm, SUPPORTED_SAMPLE_FORMATS, UnsupportedAudioFormat, validate_format)
from listener_head_ros.audio.typed_arrays import PORTAUDIO_UNSET, TYPED_ARRAYS, typed_pcm
from listener_head_ros.build import build_listener
from listener_head_ros.settings import ListenerSettings

ROOT = Path(__file__).resolve().parents[1]
SPEECH = ROOT / 'listener_head_ros' / 'data' / 'speech_en.wav'
DEFAULT_UNDERLAY = ROOT / 'build' / 'test_underlay' / 'audio_common_msgs'
MGONZS13_UNDERLAY = ROOT / 'build' / 'test_underlay_mgonzs13' / 'audio_common_msgs'
PATH_VARIABLES = ('AMENT_PREFIX_PATH', 'CMAKE_PREFIX_PATH', 'LD_LIBRARY_PATH', 'PYTHONPATH')
TIMEOUT = 60.0
# PortAudio's sample formats (portaudio.h), written out here to check the decoder's table.
PA_FLOAT32, PA_INT32, PA_INT24, PA_INT16, PA_INT8, PA_UINT8 = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20
PA_NON_INTERLEAVED_INT16 = -(1 << 31) | PA_INT16  # 0x80000008 as the int32 of AudioInfo.format
FIELDS = {array.field: array for array in TYPED_ARRAYS}

int16_samples = hnp.arrays(np.int16, st.integers(0, 700))


def decoded(pcm, channels: int = 1) -> np.ndarray:
    """Return the float samples the audio input decodes from a typed_pcm result."""
    return decode_pcm(pcm.payload, AudioFormat(channels=channels,
                                               sample_format=pcm.sample_format)).samples


# Typed arrays, without ROS -------------------------------------------------------------------


def test_the_table_is_portaudios():
    """Each array pairs with its PortAudio constant and a PCM format of the same samples."""
    assert {a.field: (a.portaudio, a.sample_format) for a in TYPED_ARRAYS} == {
        'float32_data': (PA_FLOAT32, 'F32LE'), 'int32_data': (PA_INT32, 'S32LE'),
        'int24_data': (PA_INT24, 'S24_32LE'), 'int16_data': (PA_INT16, 'S16LE'),
        'int8_data': (PA_INT8, 'S8'), 'uint8_data': (PA_UINT8, 'U8')}


@given(int16_samples)
def test_the_same_samples_decode_the_same_from_every_wide_array(samples):
    """int16 samples held as float32, int32, int24 or int16 decode to the same floats as S16LE."""
    reference = decode_pcm(samples.astype('<i2').tobytes(), AudioFormat()).samples
    wide = samples.astype(np.int64)
    for field, values in (('float32_data', (wide / 32768).astype(np.float32)),
                          ('int32_data', (wide << 16).astype(np.int32)),
                          ('int24_data', (wide << 8).astype(np.int32)),
                          ('int16_data', samples)):
        portaudio = FIELDS[field].portaudio
        for declared in (portaudio, PORTAUDIO_UNSET):  # unset: the only filled array says
            pcm = typed_pcm({f: values if f == field else [] for f in FIELDS}, declared)
            assert pcm.problem is None
            if not samples.size and declared == PORTAUDIO_UNSET:
                assert pcm.sample_format is None  # nothing says: the stream's format holds
                continue
            assert pcm.sample_format == FIELDS[field].sample_format
            assert np.array_equal(decoded(pcm), reference), (field, declared)


@given(hnp.arrays(np.int8, st.integers(0, 300)))
def test_8_bit_arrays_decode_as_their_pcm(values):
    """int8_data and uint8_data decode as S8 and U8 bytes do."""
    for field, array, sample_format in (('int8_data', values, 'S8'),
                                        ('uint8_data', values.view(np.uint8), 'U8')):
        pcm = typed_pcm({field: array}, FIELDS[field].portaudio)
        expected = decode_pcm(array.tobytes(), AudioFormat(sample_format=sample_format))
        assert np.array_equal(decoded(pcm), expected.samples)


def test_int24_beyond_24_bits_saturates_and_never_wraps():
    """int24_data beyond the 24-bit range is clipped to full scale, as floats beyond 1 are."""
    values = np.array([1 << 23, (1 << 31) - 1, -(1 << 23) - 1, -(1 << 31), 5 << 8], np.int32)
    samples = decoded(typed_pcm({'int24_data': values}, PA_INT24))[:, 0]
    top = 1 - 2.0 ** -23
    assert samples.tolist() == [np.float32(top), np.float32(top), -1.0, -1.0, 5 / 32768]


def test_interleaved_stereo_keeps_its_frames():
    """A stereo float32 array decodes as interleaved frames, left then right."""
    pcm = typed_pcm({'float32_data': np.array([0.5, -0.25, 0.125, 1.0], np.float32)},
                    PA_FLOAT32)
    assert decoded(pcm, channels=2).tolist() == [[0.5, -0.25], [0.125, 1.0]]


@pytest.mark.parametrize('arrays, declared, reason', [
    ({'uint8_data': bytes(8)}, 0x10000, 'PortAudio sample format 65536'),  # paCustomFormat
    ({'int16_data': [1, 2]}, PA_NON_INTERLEAVED_INT16, 'not one this AudioData definition'),
    ({'int16_data': [1, 2]}, 3, 'not one this AudioData definition'),
    ({'int16_data': [], 'float32_data': [0.5]}, PA_INT16, 'int16_data is empty while'),
    ({'int16_data': [1], 'float32_data': [0.5]}, PORTAUDIO_UNSET, 'unset'),
    ({'int16_data': [1]}, PA_INT24, 'not one this AudioData definition'),  # no int24_data
])
def test_what_cannot_be_read_is_refused_as_a_format(arrays, declared, reason):
    """An unreadable message gives a sample format no decoder takes, and says why."""
    pcm = typed_pcm(arrays, declared)
    assert reason in pcm.problem and pcm.payload.size == 0
    with pytest.raises(UnsupportedAudioFormat):
        validate_format(AudioFormat(sample_format=pcm.sample_format))


@given(st.dictionaries(st.sampled_from(sorted(FIELDS)), hnp.arrays(np.int8, st.integers(0, 4))),
       st.one_of(st.sampled_from([a.portaudio for a in TYPED_ARRAYS] + [PORTAUDIO_UNSET]),
                 st.integers(-(1 << 31), (1 << 31) - 1)))
def test_any_message_is_read_from_one_array_or_refused(arrays, declared):
    """Whatever the arrays and constant: the named (or only filled) array is read, or refused."""
    pcm = typed_pcm(arrays, declared)
    filled = [field for field, values in arrays.items() if len(values)]
    if pcm.problem is not None:
        assert pcm.sample_format not in SUPPORTED_SAMPLE_FORMATS and pcm.payload.size == 0
        return
    if pcm.sample_format is None:
        assert declared == PORTAUDIO_UNSET and not filled
        return
    chosen = next(a for a in TYPED_ARRAYS if a.sample_format == pcm.sample_format)
    assert chosen.portaudio == declared or (declared == PORTAUDIO_UNSET and filled == [
        chosen.field])
    assert pcm.payload.size == len(arrays[chosen.field]) * np.dtype(chosen.dtype).itemsize


# Each flavour against its own underlay, over DDS ----------------------------------------------


def underlay_env(underlay: Path, domain: int) -> dict:
    """Return this environment with ``underlay`` in place of the default audio_common_msgs."""
    env, swapped = dict(os.environ), 0
    for name in PATH_VARIABLES:
        entries = []
        for entry in filter(None, env.get(name, '').split(os.pathsep)):
            if entry.startswith(str(DEFAULT_UNDERLAY)):
                entry, swapped = str(underlay) + entry[len(str(DEFAULT_UNDERLAY)):], swapped + 1
            entries.append(entry)
        env[name] = os.pathsep.join(entries)
    if not swapped:
        pytest.skip(f'{DEFAULT_UNDERLAY} is not on the paths: source scripts/env.sh')
    env['PYTHONPATH'] = os.pathsep.join([str(ROOT), env['PYTHONPATH']])
    env['ROS_DOMAIN_ID'] = str(domain)
    return env


@pytest.fixture(scope='module')
def speech_path(tmp_path_factory) -> Path:
    """Return a file of 2 s of the bundled speech, int16 mono at 16 kHz."""
    samples, rate = soundfile.read(SPEECH, dtype='int16')
    assert rate == 16000
    path = tmp_path_factory.mktemp('flavours') / 'speech.npy'
    np.save(path, samples[16000:48000])
    return path


@pytest.fixture(scope='module')
def probes(speech_path) -> dict:
    """
    Run audio_flavour_probe.py in each flavour's underlay at once; return their results.

    Each child has a DDS domain of its own (this one, and one 100 away, outside conftest's
    1..100), so the two never hear each other.
    """
    if not MGONZS13_UNDERLAY.exists():
        pytest.skip(f'{MGONZS13_UNDERLAY} is missing: run make setup')
    domain = int(os.environ['ROS_DOMAIN_ID'])
    other = domain + 100 if domain + 100 <= 232 else domain - 100  # 232: Fast DDS's largest
    runs = {'ros-drivers': (DEFAULT_UNDERLAY, other, 'poses'),
            'mgonzs13': (MGONZS13_UNDERLAY, domain, 'poses,formats')}
    children = {name: subprocess.Popen(
        [sys.executable, str(ROOT / 'test' / 'audio_flavour_probe.py'), scenarios,
         str(speech_path)], env=underlay_env(underlay, child_domain), cwd=ROOT,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for name, (underlay, child_domain, scenarios) in runs.items()}
    results = {}
    for name, child in children.items():
        try:
            out, err = child.communicate(timeout=TIMEOUT)
        finally:
            child.kill()
        assert child.returncode == 0, f'{name} probe failed:\n{err[-3000:]}'
        results[name] = json.loads(out.strip().splitlines()[-1])
    return results


@pytest.fixture(scope='module')
def offline(speech_path) -> tuple:
    """Return the hop and the poses the engine gives without ROS: one tick, then one a hop."""
    listener = build_listener(ListenerSettings())
    engine, hop = listener.engine, listener.model.hop_length
    engine.warm_up()
    engine.reset()
    samples = np.load(speech_path)
    outputs = [engine.tick()]
    for start in range(0, samples.size - hop + 1, hop):
        chunk = samples[start:start + hop].astype('<i2').tobytes()
        assert listener.audio_input.push(chunk) is None
        outputs.append(engine.tick())
    return hop, [[o.frame.roll, o.frame.pitch, o.frame.yaw, *map(float, o.angular_velocity)]
                 for o in outputs]


def test_each_underlay_is_detected_as_its_flavour(probes):
    """The import-time detection names the flavour of whichever audio_common_msgs is installed."""
    from listener_head_ros.ros.audio_messages import detect_flavour, MGONZS13, ROS_DRIVERS
    from std_msgs.msg import String
    assert probes['ros-drivers']['poses']['flavour'] == ROS_DRIVERS
    assert probes['mgonzs13']['poses']['flavour'] == MGONZS13
    with pytest.raises(ImportError, match='neither'):
        detect_flavour(String)


def test_the_same_samples_give_the_same_poses_through_either_flavour(probes, offline):
    """
    int16 speech sent as ros-drivers AudioData and as mgonzs13 AudioStamped gives the same poses.

    The nodes run on simulated time, one hop per message and one message per tick, so each pose
    sequence is a function of the decoded samples alone: equal sequences mean equal audio
    reached both engines. Both equal the engine's output on the same hops without ROS, and the
    head moves (the comparison is not of two still heads).
    """
    hop, reference = offline
    hops = len(reference) - 1
    drivers, mgonzs13 = probes['ros-drivers']['poses'], probes['mgonzs13']['poses']
    for run in (drivers, mgonzs13):
        assert run['stats']['messages'] == hops and run['stats']['input_frames'] == hops * hop
        assert run['stats']['malformed_messages'] == run['stats']['rejected_messages'] == 0
        assert run['dropped'] == 0
    assert drivers['poses'] == mgonzs13['poses']
    assert drivers['poses'] == reference
    assert np.ptp(np.array(drivers['poses'])[:, :3], axis=0).max() > 1e-3


def test_mgonzs13_typed_arrays_of_each_kind_reach_the_node(probes):
    """float32 48 kHz stereo and int24 decode; an unknown PortAudio format is refused, counted."""
    float32, int24, custom, int16 = probes['mgonzs13']['formats']['seen']
    assert float32['format'] == ['F32LE', 48000, 2] and float32['error'] is None
    assert float32['stats']['input_frames'] == 10 * 1024
    assert int24['format'] == ['S24_32LE', 16000, 1] and int24['error'] is None
    assert int24['stats']['input_frames'] == 10 * 1024 + 10 * 512
    assert 'PortAudio format 65536' in custom['error']
    assert custom['stats']['rejected_formats'] == custom['stats']['rejected_messages'] == 1
    assert int16['format'] == ['S16LE', 16000, 1] and int16['error'] is None
    assert int16['stats']['format_changes'] == 4 and int16['stats']['rejected_messages'] == 1
    assert int16['stats']['malformed_messages'] == 0
    assert probes['mgonzs13']['formats']['frames_processed'] > 0


# audio_info from either audio_capture QoS --------------------------------------------------


def test_the_audio_info_qos_is_what_every_publisher_offers():
    """Transient-local only where every publisher is; volatile with none, or any volatile one."""
    pytest.importorskip('rclpy')
    from rclpy.qos import DurabilityPolicy as Durability, QoSProfile, ReliabilityPolicy
    from rclpy.topic_endpoint_info import TopicEndpointInfo
    from listener_head_ros.ros.audio_messages import info_qos

    def publisher(durability, reliability=ReliabilityPolicy.RELIABLE):
        return TopicEndpointInfo(qos_profile=QoSProfile(depth=1, durability=durability,
                                                        reliability=reliability))

    latched, volatile = publisher(Durability.TRANSIENT_LOCAL), publisher(Durability.VOLATILE)
    for publishers, durability in (([], Durability.VOLATILE),
                                   ([latched], Durability.TRANSIENT_LOCAL),
                                   ([latched, volatile], Durability.VOLATILE),
                                   ([volatile], Durability.VOLATILE)):
        qos = info_qos(publishers)
        assert (qos.durability, qos.reliability) == (durability, ReliabilityPolicy.RELIABLE)
    assert info_qos([publisher(Durability.TRANSIENT_LOCAL, ReliabilityPolicy.BEST_EFFORT)]
                    ).reliability == ReliabilityPolicy.BEST_EFFORT


@contextmanager
def audio_capture(tmp_path: Path, durability: str, info_period: float):
    """Run audio_capture_stand_in.py; yield it and the file its stderr goes to."""
    log = tmp_path / f'audio_capture_{durability}.log'
    with open(log, 'w') as stderr:
        process = subprocess.Popen(
            [sys.executable, str(ROOT / 'test' / 'audio_capture_stand_in.py'),
             '--durability', durability, '--info-period', str(info_period)],
            env={**os.environ, 'PYTHONPATH': os.pathsep.join(
                [str(ROOT), os.environ.get('PYTHONPATH', '')])},
            cwd=ROOT, stdout=subprocess.PIPE, stderr=stderr, text=True)
        try:
            assert process.stdout.readline().strip() == 'ready', log.read_text()
            yield process, log
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=10)
            finally:
                process.kill()
                process.stdout.close()


@contextmanager
def listening(context):
    """Yield a Session (audio_flavour_probe.py) with no microphone of its own, not yet active."""
    session = pytest.importorskip('audio_flavour_probe').Session(context, microphone=False)
    try:
        yield session
    finally:
        session.close()


DRIVER_FORMAT = AudioFormat(channels=2, sample_rate=48000, sample_format='F32LE')


def received(session) -> bool:
    """Tell whether the node decodes with the stand-in driver's format."""
    return session.node.audio_input.format == DRIVER_FORMAT


def test_the_format_comes_from_a_volatile_audio_info(rclpy_context, tmp_path):
    """An older audio_capture's volatile audio_info reaches the node; no side is incompatible."""
    from audio_common_msgs.msg import AudioInfo
    from rclpy.qos import DurabilityPolicy, QoSProfile
    with listening(rclpy_context) as session:
        session.start()
        with audio_capture(tmp_path, 'volatile', info_period=0.3) as (_, log):
            assert polling.wait_for(lambda: received(session), timeout=15.0)
            assert session.node.audio_input.snapshot().input_frames > 0
            assert 'incompatible' not in log.read_text()
            # The check can fail: a transient-local subscription makes that driver warn.
            latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
            session.probe.create_subscription(AudioInfo, 'audio_info', lambda msg: None, latched)
            assert polling.wait_for(lambda: 'incompatible QoS' in log.read_text(), timeout=15.0)


@pytest.mark.parametrize('driver_first', [True, False], ids=['driver first', 'listener first'])
def test_the_format_comes_from_a_transient_local_audio_info(rclpy_context, tmp_path,
                                                            driver_first):
    """A current audio_capture's audio_info, published once, reaches the node either way round."""
    with listening(rclpy_context) as session:
        if not driver_first:
            session.start()
        with audio_capture(tmp_path, 'transient_local', info_period=0) as (_, log):
            if driver_first:  # started before the listener: only the latched copy remains
                assert polling.wait_for(
                    lambda: session.node.get_publishers_info_by_topic('audio_info'))
                session.start()
            assert polling.wait_for(lambda: received(session), timeout=15.0)
            assert 'incompatible' not in log.read_text()
