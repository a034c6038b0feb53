"""The listener's one settings object: the parameter file, strict reading, one builder."""

import importlib.util
from pathlib import Path
import sys

import pytest
import torch
import yaml

from listener_head_ros.build import build_listener, check_inputs
from listener_head_ros.engine import EngineConfig
from listener_head_ros.eval import offline
from listener_head_ros.models.prosodic import ProsodicListener
from listener_head_ros.schema import SettingsError
from listener_head_ros.settings import (
    LISTENER_SETTINGS, ListenerSettings, load_listener_settings, read_params_section,
    settings_from_values)

ROOT = Path(__file__).resolve().parents[1]
PARAMS = ROOT / 'config' / 'listener.yaml'


def _write(path: Path, values: dict) -> Path:
    path.write_text(yaml.safe_dump({'/**/listener': {'ros__parameters': values}}))
    return path


def test_parameter_file_matches_the_settings_exactly():
    """config/listener.yaml lists every setting, in order, with its default: no drift."""
    section = read_params_section(PARAMS)
    assert list(section) == [spec.name for spec in LISTENER_SETTINGS]
    for spec in LISTENER_SETTINGS:
        value = section[spec.name]
        expected = list(spec.default) if isinstance(spec.default, tuple) else spec.default
        assert value == expected and type(value) is type(expected), spec.name
    assert load_listener_settings(PARAMS) == ListenerSettings()


def test_every_setting_is_described_and_ranges_hold_the_default():
    """Each setting says what it is; a declared range contains its default."""
    for spec in LISTENER_SETTINGS:
        assert spec.description.strip().endswith('.') and len(spec.description) > 10, spec
        if spec.range is not None:
            assert spec.range[0] <= spec.default <= spec.range[1], spec.name


@pytest.mark.parametrize('typo, suggestion', [
    ('frame_rte', 'frame_rate'),
    ('limits.max_angular_velcity', 'limits.max_angular_velocity'),
    ('prosodic.refactory', 'prosodic.refractory'),
])
def test_an_unknown_key_names_the_closest_valid_one(tmp_path, typo, suggestion):
    """A typo in a parameter file is an error naming the key and what was meant."""
    tree = {'frame_rate': 30.0}
    *parents, leaf = typo.split('.')
    node = tree
    for part in parents:  # a dotted name is nested in the file, as ROS writes it
        node = node.setdefault(part, {})
    node[leaf] = 1.0
    path = _write(tmp_path / 'typo.yaml', tree)
    with pytest.raises(SettingsError, match=rf"unknown setting '{typo}' \(did you mean "
                                            rf"'{suggestion}'\?\)"):
        load_listener_settings(path)


@pytest.mark.parametrize('values, message', [
    ({'frame_rate': 30}, r'frame_rate must be written as a float \(30.0'),
    ({'frame_rate': 500.0}, r'outside its range \[1.0, 200.0\]'),
    ({'cpu_threads': 1.5}, 'cpu_threads must be an integer'),
    ({'device': 'gpu'}, 'device must be one of'),
    ({'input.channel': 'left'}, "channel must be 'mean'"),
    ({'limits.roll_min': 0.5}, r'outside its range'),
    ({'prosodic.drift_std': [0.1, 0.2]}, 'a list of 3 numbers'),
    ({'topics.audio': 3}, 'topics.audio must be a string'),
    ({'neutral_return_timeout': float('nan')}, 'must be finite'),
])
def test_bad_values_are_refused_with_the_reason(values, message):
    """Wrong types, ranges and values fail with a message that says which and why."""
    with pytest.raises(SettingsError, match=message):
        settings_from_values(values)


def test_an_unreadable_or_foreign_file_is_a_clear_error(tmp_path):
    """No file, bad YAML or no listener section: a SettingsError that names the file."""
    with pytest.raises(SettingsError, match='cannot read'):
        load_listener_settings(tmp_path / 'none.yaml')
    (tmp_path / 'bad.yaml').write_text('a: [1, 2')
    with pytest.raises(SettingsError, match='cannot read'):
        load_listener_settings(tmp_path / 'bad.yaml')
    (tmp_path / 'other.yaml').write_text(yaml.safe_dump({'head_driver': {
        'ros__parameters': {'control_rate': 50.0}}}))
    with pytest.raises(SettingsError, match='no listener ros__parameters'):
        load_listener_settings(tmp_path / 'other.yaml')


def test_settings_round_trip_and_overrides():
    """to_values/with_values round-trip; overrides win over the file."""
    settings = load_listener_settings(PARAMS, model='prosodic', device='cpu')
    assert settings.device == 'cpu'
    assert settings_from_values(settings.to_values()) == settings
    changed = settings.with_values(**{'limits.roll_max': 0.2, 'frame_rate': 25.0})
    assert changed.engine.limits.roll_max == 0.2 and changed.frame_rate == 25.0
    assert isinstance(changed.engine, EngineConfig)


def _bench_module(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / 'benchmarks' / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _describe(listener) -> dict:
    """Everything that decides what a built listener does."""
    model = listener.model
    return {'settings': listener.settings, 'engine': listener.engine.config,
            'model': (type(model), model.name, model.config, model.hop_length,
                      model.sample_rate),
            'buffer': listener.audio_input.buffer.capacity,
            'format': listener.audio_input.format, 'channel': listener.audio_input.channel,
            'device': listener.device, 'threads': torch.get_num_threads()}


def test_node_offline_and_benchmarks_build_the_same_listener(monkeypatch, rclpy_context):
    """The node, offline evaluation and the benchmarks build equal listeners from one file."""
    from rclpy.lifecycle import TransitionCallbackReturn
    import listener_head_ros.build as build_module
    from listener_head_ros.ros.listener_node import ListenerNode

    built = {}
    torch.set_num_threads(2)
    built['offline'] = _describe(offline.offline_listener(PARAMS))
    captured = []
    monkeypatch.setattr(build_module, 'build_listener',
                        lambda *a, **k: captured.append(build_listener(*a, **k)) or captured[-1])
    torch.set_num_threads(2)
    _bench_module('bench_listener').build_engine(load_listener_settings(PARAMS))
    built['bench'] = _describe(captured[-1])
    torch.set_num_threads(2)
    node = ListenerNode(context=rclpy_context,
                        cli_args=['--ros-args', '--params-file', str(PARAMS)])
    try:
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
        built['node'] = _describe(node.listener)
    finally:
        node.destroy_node()
    assert built['node'] == built['offline'] == built['bench']
    assert built['node']['threads'] == ListenerSettings().cpu_threads == 1
    assert built['node']['model'][0] is ProsodicListener


def test_the_builder_refuses_a_model_whose_inputs_it_cannot_supply():
    """A model that needs a transcript is refused where none is supplied, naming the input."""
    model = ProsodicListener()
    model.inputs = frozenset({'audio', 'transcript'})
    with pytest.raises(SettingsError, match=r'needs the input\(s\) transcript'):
        build_listener(ListenerSettings(), model=model)
    check_inputs(model, {'audio', 'transcript'})
    model.inputs = frozenset({'audio', 'telepathy'})
    with pytest.raises(SettingsError, match='unknown inputs'):
        check_inputs(model, {'audio'})
