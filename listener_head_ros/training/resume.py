"""
Resumable training state in safetensors + JSON: weights, EMA weights and optimizer moments.

Nothing is pickled: tensors go to ``training_state.safetensors`` under flat names and the rest
(step, epoch, batches done in that epoch, optimizer hyper-parameters) to ``training_state.json``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, Tuple

from safetensors.torch import load_file, save_file
import torch

TENSORS_NAME = 'training_state.safetensors'
META_NAME = 'training_state.json'


def save_training_state(directory: Path, model: torch.nn.Module, ema: torch.nn.Module,
                        optimizer: torch.optim.Optimizer, step: int, epoch: int,
                        batch: int = 0) -> None:
    """
    Write the state needed to continue training from ``step``; replace it atomically.

    ``batch`` counts the batches of ``epoch`` already trained on, so that a resumed run skips
    them and continues exactly as an uninterrupted one.
    """
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {f'model.{k}': v for k, v in model.state_dict().items()}
    tensors.update({f'ema.{k}': v for k, v in ema.state_dict().items()})
    optimizer_state = optimizer.state_dict()
    for index, state in optimizer_state['state'].items():
        for key, value in state.items():
            tensors[f'optimizer.{index}.{key}'] = torch.as_tensor(value)
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    meta = {'step': step, 'epoch': epoch, 'batch': batch,
            'param_groups': optimizer_state['param_groups']}
    save_file(tensors, str(directory / (TENSORS_NAME + '.tmp')))
    (directory / (META_NAME + '.tmp')).write_text(json.dumps(meta, indent=1))
    (directory / (TENSORS_NAME + '.tmp')).replace(directory / TENSORS_NAME)
    (directory / (META_NAME + '.tmp')).replace(directory / META_NAME)


def has_training_state(directory: Path) -> bool:
    """Tell whether ``directory`` holds a saved training state."""
    return (directory / TENSORS_NAME).is_file() and (directory / META_NAME).is_file()


def load_training_state(directory: Path, model: torch.nn.Module, ema: torch.nn.Module,
                        optimizer: torch.optim.Optimizer) -> Tuple[int, int, int]:
    """Restore the state saved in ``directory`` in place; return (step, epoch, batch)."""
    tensors = load_file(str(directory / TENSORS_NAME))
    meta = json.loads((directory / META_NAME).read_text())
    model.load_state_dict(_prefixed(tensors, 'model.'))
    ema.load_state_dict(_prefixed(tensors, 'ema.'))
    state: Dict[int, Dict[str, Any]] = {}
    for name, value in _prefixed(tensors, 'optimizer.').items():
        index, key = name.split('.', 1)
        state.setdefault(int(index), {})[key] = value
    optimizer.load_state_dict({'state': state, 'param_groups': meta['param_groups']})
    return int(meta['step']), int(meta['epoch']), int(meta.get('batch', 0))


def _prefixed(tensors: Dict[str, torch.Tensor], prefix: str) -> Dict[str, torch.Tensor]:
    return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
