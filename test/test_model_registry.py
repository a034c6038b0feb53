"""
Adding a model is one file plus one registration line: train, save, load and run it in the node.

``test/tiny_listener.py`` is the file; the registration line is its module name in
``BUILTIN_NETWORK_MODULES``, which the fixture adds. Nothing else in the package changes.
"""

import io
import threading
import time

import numpy as np
import pytest
import soundfile

from listener_head_ros.data.feature_cache import prepare_cache
from listener_head_ros.data.iemocap import IemocapSource
from listener_head_ros.data.synthetic_iemocap import generate_corpus, SyntheticConfig
from listener_head_ros.models import registry
from listener_head_ros.models.checkpoint import load_checkpoint, registered_model_types
from listener_head_ros.models.learned import TorchListenerModel
from listener_head_ros.training.config import TrainConfig
from listener_head_ros.training.trainer import cross_validation

from test_settings import ROOT

SPEECH = ROOT / 'listener_head_ros' / 'data' / 'speech_en.wav'


@pytest.fixture(scope='module')
def tiny_registered():
    """Register the tiny model the documented way: its module in the built-in list."""
    patch = pytest.MonkeyPatch()
    patch.setattr(registry, 'BUILTIN_NETWORK_MODULES',
                  registry.BUILTIN_NETWORK_MODULES + ('tiny_listener',))
    yield
    patch.undo()


@pytest.fixture(scope='module')
def trained(tiny_registered, tmp_path_factory):
    """Train the tiny model with the real trainer on a small synthetic corpus; its checkpoint."""
    root = tmp_path_factory.mktemp('tiny')
    corpus = generate_corpus(root / 'corpus', SyntheticConfig(
        sessions=(1, 2), dialogs_per_session=1, turns_per_dialog=6), seed=3)
    prepare_cache(IemocapSource(corpus.root, sessions=(1, 2)), root / 'cache', progress=False,
                  out=io.StringIO())
    config = TrainConfig(cache_dir=str(root / 'cache'), out_dir=str(root / 'run'),
                         model_type='tiny_listener', folds=(2,), steps=30, batch_size=2,
                         crop_frames=60, burn_in_frames=30, warmup_steps=5, log_every=10,
                         checkpoint_every=30, device='cpu', streaming_eval=False)
    results = cross_validation(config)
    return root / 'run' / 'fold2' / 'checkpoint', results


def test_the_registry_lists_the_new_model(tiny_registered):
    """The new architecture is a known network and a loadable checkpoint type."""
    assert 'tiny_listener' in registry.network_names()
    assert 'tiny_listener' in registered_model_types()
    assert registry.network_inputs('tiny_transcript_listener') == {'audio', 'transcript'}
    with pytest.raises(ValueError, match="did you mean 'tiny_listener'"):
        registry.network_type('tiny_listner')


def test_the_trained_model_loads_and_streams_as_it_runs(trained):
    """The trainer's checkpoint loads as a TorchListenerModel whose steps equal its run."""
    checkpoint, results = trained
    assert results['folds'], results
    model = load_checkpoint(checkpoint)
    assert isinstance(model, TorchListenerModel) and model.name == 'tiny_listener'
    audio, _ = soundfile.read(SPEECH, dtype='float32')
    audio = audio[:16000 * 2]
    batched = np.array([f.pose for f in model.run(audio)])
    model.reset()
    hop = model.hop_length
    stepped = np.array([model.step(audio[i:i + hop]).pose
                        for i in range(0, audio.size - hop + 1, hop)])
    np.testing.assert_allclose(stepped, batched, atol=1e-5)
    assert np.abs(batched).max() > 0.0


def _run_node(context, checkpoint, seconds: float = 1.5):
    """Configure and activate a listener on ``checkpoint``, play speech, return poses."""
    from audio_common_msgs.msg import AudioData
    from rclpy.executors import MultiThreadedExecutor
    from rclpy.lifecycle import TransitionCallbackReturn
    from rclpy.parameter import Parameter
    from listener_head_ros.msg import HeadPose
    from listener_head_ros.audio.pcm import encode_pcm
    from listener_head_ros.ros.listener_node import ListenerNode
    import rclpy

    node = ListenerNode(context=context, parameter_overrides=[
        Parameter('model', value=str(checkpoint))])
    probe = rclpy.create_node('tiny_probe', context=context)
    poses = []
    probe.create_subscription(HeadPose, 'head_pose', poses.append, 100)
    audio_out = probe.create_publisher(AudioData, 'audio', 100)
    executor = MultiThreadedExecutor(context=context)
    executor.add_node(node)
    executor.add_node(probe)
    thread = threading.Thread(target=executor.spin, daemon=True)
    thread.start()
    try:
        if node.trigger_configure() != TransitionCallbackReturn.SUCCESS:
            return None
        assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
        deadline = time.monotonic() + 10.0
        while audio_out.get_subscription_count() == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        audio, _ = soundfile.read(SPEECH, dtype='float32')
        for start in range(0, int(seconds * 16000), 512):
            audio_out.publish(AudioData(data=encode_pcm(audio[start:start + 512], 'S16LE')))
            time.sleep(0.032)
        time.sleep(0.3)
        return list(poses), node.status()
    finally:
        executor.shutdown(timeout_sec=5.0)
        thread.join(timeout=5.0)
        node.destroy_node()
        probe.destroy_node()


def test_the_node_runs_the_new_model(trained, rclpy_context):
    """The listener node loads the new model's checkpoint and publishes its poses."""
    pytest.importorskip('audio_common_msgs.msg')
    checkpoint, _ = trained
    poses, status = _run_node(rclpy_context, checkpoint)
    assert len(poses) >= 20 and status.frames_stepped >= 30
    values = np.array([(p.roll, p.pitch, p.yaw) for p in poses])
    assert np.all(np.isfinite(values)) and np.abs(values).max() > 0.0


def test_the_node_refuses_a_model_whose_inputs_it_cannot_supply(tiny_registered, tmp_path,
                                                                rclpy_context, capfd):
    """A checkpoint that needs transcripts fails configure and says which input is missing."""
    pytest.importorskip('audio_common_msgs.msg')
    from listener_head_ros.models.learned import save_learned_checkpoint
    network = registry.build_network('tiny_transcript_listener')
    save_learned_checkpoint(tmp_path / 'needs_text', network)
    assert _run_node(rclpy_context, tmp_path / 'needs_text') is None
    err = capfd.readouterr().err
    assert 'needs the input(s) transcript' in err, err
