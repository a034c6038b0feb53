"""
Resumable training state in safetensors + JSON: weights, optimizer moments and every RNG.

Nothing is pickled: tensors go to ``training_state.safetensors`` under flat names and the rest
(the :class:`Progress`, optimizer hyper-parameters, numpy's and Python's RNG states) to
``training_state.json``.  The RNG states (torch's CPU generator, the run's CUDA generator,
numpy's and Python's global ones) are those after the last step saved, so that dropout draws
after a resume the masks an uninterrupted run draws.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
import json
from pathlib import Path
import random
from typing import Any, Dict, Optional

import numpy as np
from safetensors.torch import load_file, save_file
import torch

TENSORS_NAME = 'training_state.safetensors'
META_NAME = 'training_state.json'


@dataclass(frozen=True)
class Progress:
    """
    Where a training run stands after ``step`` steps.

    ``batch`` counts the batches of ``epoch`` already trained on (a resumed run skips them),
    ``seconds`` the training time so far (log.csv's clock) and ``first_loss`` the loss of the
    run's first step, the reference of the divergence guard (None before the first step).
    """

    step: int = 0
    epoch: int = 0
    batch: int = 0
    seconds: float = 0.0
    first_loss: Optional[float] = None


def save_training_state(directory: Path, model: torch.nn.Module, ema: torch.nn.Module,
                        optimizer: torch.optim.Optimizer, progress: Progress,
                        device: str = 'cpu') -> None:
    """Write the state needed to continue training after ``progress``; replace it atomically."""
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {f'model.{k}': v for k, v in model.state_dict().items()}
    tensors.update({f'ema.{k}': v for k, v in ema.state_dict().items()})
    optimizer_state = optimizer.state_dict()
    for index, state in optimizer_state['state'].items():
        for key, value in state.items():
            tensors[f'optimizer.{index}.{key}'] = torch.as_tensor(value)
    tensors['rng.torch'] = torch.get_rng_state()
    if device.startswith('cuda'):
        tensors['rng.cuda'] = torch.cuda.get_rng_state(device)
    kind, keys, position, has_gauss, gauss = np.random.get_state()
    tensors['rng.numpy'] = torch.from_numpy(keys.astype(np.int64))
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    meta = {**asdict(progress), 'param_groups': optimizer_state['param_groups'],
            'rng': {'numpy': [kind, position, has_gauss, gauss],
                    'python': _json_ready(random.getstate())}}
    save_file(tensors, str(directory / (TENSORS_NAME + '.tmp')))
    (directory / (META_NAME + '.tmp')).write_text(json.dumps(meta, indent=1))
    (directory / (TENSORS_NAME + '.tmp')).replace(directory / TENSORS_NAME)
    (directory / (META_NAME + '.tmp')).replace(directory / META_NAME)


def has_training_state(directory: Path) -> bool:
    """Tell whether ``directory`` holds a saved training state."""
    return (directory / TENSORS_NAME).is_file() and (directory / META_NAME).is_file()


def load_training_state(directory: Path, model: torch.nn.Module, ema: torch.nn.Module,
                        optimizer: torch.optim.Optimizer, device: str = 'cpu') -> Progress:
    """Restore the state saved in ``directory`` in place, RNGs included; return its progress."""
    tensors = load_file(str(directory / TENSORS_NAME))
    meta = json.loads((directory / META_NAME).read_text())
    model.load_state_dict(_prefixed(tensors, 'model.'))
    ema.load_state_dict(_prefixed(tensors, 'ema.'))
    state: Dict[int, Dict[str, Any]] = {}
    for name, value in _prefixed(tensors, 'optimizer.').items():
        index, key = name.split('.', 1)
        state.setdefault(int(index), {})[key] = value
    optimizer.load_state_dict({'state': state, 'param_groups': meta['param_groups']})
    if 'rng' in meta:  # states saved before the RNGs were restore only the weights
        _restore_rngs(tensors, meta['rng'], device)
    return Progress(**{name: meta[name] for name in Progress.__dataclass_fields__
                       if name in meta})


def _restore_rngs(tensors: Dict[str, torch.Tensor], saved: Dict[str, Any], device: str
                  ) -> None:
    torch.set_rng_state(tensors['rng.torch'])
    if device.startswith('cuda') and 'rng.cuda' in tensors:
        torch.cuda.set_rng_state(tensors['rng.cuda'], device)
    kind, position, has_gauss, gauss = saved['numpy']
    np.random.set_state((kind, tensors['rng.numpy'].numpy().astype(np.uint32), position,
                         has_gauss, gauss))
    version, internal, gauss_next = saved['python']
    random.setstate((version, tuple(internal), gauss_next))


def _json_ready(value: Any) -> Any:
    """Return nested tuples as lists (JSON), leaving other values as they are."""
    return [_json_ready(v) for v in value] if isinstance(value, (tuple, list)) else value


def _prefixed(tensors: Dict[str, torch.Tensor], prefix: str) -> Dict[str, torch.Tensor]:
    return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
