"""Property test: the checkpoint loader on arbitrary ``config.json`` files."""

import copy
import json
from pathlib import Path
import pickle
import resource
import shutil
import tempfile
from unittest import mock

from hypothesis import given, settings, strategies as st
import numpy as np
import pytest
import torch

from listener_head_ros.models.checkpoint import (
    CheckpointError, CONFIG_NAME, load_checkpoint, save_prosodic_checkpoint, WEIGHTS_NAME)
from listener_head_ros.models.prosodic import ProsodicListenerConfig
from test_checkpoint import save_tiny_checkpoint

GROWTH_LIMIT_MB = 300  # the peak RSS may grow this much over all examples, at most
RAW = '@@raw@@'  # a string value replaced by a raw JSON token after serialising

SAVERS = {  # write a small valid checkpoint of each model type into a directory
    'gru': lambda path: save_tiny_checkpoint(path, 'gru'),
    'active': lambda path: save_tiny_checkpoint(path, 'active'),
    'prosodic': lambda path: save_prosodic_checkpoint(path, ProsodicListenerConfig()),
}

# Tokens json.dumps cannot write, by name: a 5000-digit integer, overflowing floats, nesting.
RAW_TOKENS = {'huge_int': '1' * 5000, 'minus_1e999': '-1e999', '1e999': '1e999',
              'deep_list': '[' * 100_000 + ']' * 100_000,
              'deep_object': '{"a": ' * 50_000 + '1' + '}' * 50_000,
              'nested_20': '[' * 20 + ']' * 20}
SPECIAL = [0, -1, 1, 2, 3, 68, 2 ** 31, 2 ** 63, 10 ** 9, -10 ** 9, 10 ** 18, 10 ** 30, 0.5,
           1e-300, 1e308, -1e308, float('nan'), float('inf'), 16000, 30.0, '', 'mean', 'sample',
           'head', 'audio', 'causal_gru_mdn', 'prosodic', [], {}, ['head', 'head'], RAW]

scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=6),
                    st.sampled_from(SPECIAL))
json_values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=4), inner, max_size=3)),
    max_leaves=6)
specials = st.sampled_from(SPECIAL)
values = st.one_of(specials, specials, json_values)  # a size, type or name 2 times in 3


@pytest.fixture(scope='module')
def checkpoints(tmp_path_factory):
    """Return a small valid checkpoint of each model type and its parsed config.json."""
    root = tmp_path_factory.mktemp('tiny')
    saved = {}
    for kind, save in SAVERS.items():
        directory = save(root / kind)
        saved[kind] = directory, json.loads((directory / CONFIG_NAME).read_text())
    return saved


def paths(document, prefix=()):
    """Return the path (keys and indices) of every value in a JSON document."""
    found = [prefix]
    if isinstance(document, dict):
        for key, value in document.items():
            found += paths(value, prefix + (key,))
    elif isinstance(document, list):
        for index, value in enumerate(document):
            found += paths(value, prefix + (index,))
    return found


def mutate(document, mutation, path, value, key):
    """Return a copy of ``document`` with one mutation applied at ``path``."""
    if mutation == 'whole':
        return value
    document = copy.deepcopy(document)
    *parents, last = path or ('model_config',)
    container = document
    for step in parents:
        container = container[step]
    if mutation == 'replace':
        container[last] = value
    elif mutation == 'delete':
        del container[last]
    elif isinstance(container[last], dict):  # 'extra': one more key
        container[last][key] = value
    return document


def serialise(document, raw_token: str) -> str:
    """Return the document as JSON text, with every RAW string replaced by ``raw_token``."""
    return json.dumps(document).replace(json.dumps(RAW), raw_token)


def must_not_unpickle(*args, **kwargs):
    """Fail the test: a checkpoint loader called an unpickler."""
    raise AssertionError('the loader unpickled something')


@settings(max_examples=100)
@given(data=st.data(), kind=st.sampled_from(sorted(SAVERS)),
       mutation=st.sampled_from(['replace'] * 4 + ['delete', 'extra', 'whole']),
       value=values, key=st.text(max_size=6), raw_token=st.sampled_from(sorted(RAW_TOKENS)))
def test_any_config_loads_a_working_model_or_fails_as_checkpoint_error(
        checkpoints, data, kind, mutation, value, key, raw_token):
    """A mutated config.json loads a model that steps, or raises a clear CheckpointError."""
    source, document = checkpoints[kind]
    path = data.draw(st.sampled_from(paths(document)[1:]), label='path')
    text = serialise(mutate(document, mutation, path, value, key), RAW_TOKENS[raw_token])
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with tempfile.TemporaryDirectory() as scratch, \
            mock.patch.object(pickle, 'load', must_not_unpickle), \
            mock.patch.object(pickle, 'loads', must_not_unpickle), \
            mock.patch.object(pickle, 'Unpickler', must_not_unpickle), \
            mock.patch.object(torch, 'load', must_not_unpickle):
        directory = Path(scratch)
        shutil.copy(source / WEIGHTS_NAME, directory / WEIGHTS_NAME)
        (directory / CONFIG_NAME).write_text(text)
        try:
            model = load_checkpoint(directory)
        except CheckpointError as error:
            message = str(error)
            assert 0 < len(message) < 2000 and str(directory) in message, message
        else:
            frame = model.step(np.zeros(model.hop_length, dtype=np.float32))
            assert frame.confidence >= 0.0
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < GROWTH_LIMIT_MB, f'loading grew the peak RSS by {grown_mb:.0f} MB'
