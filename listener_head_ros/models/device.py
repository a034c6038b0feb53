"""Choose the torch device a model runs on, falling back to the CPU when CUDA is absent."""

from __future__ import annotations

from typing import Optional, Tuple

DEVICES = ('auto', 'cpu', 'cuda')


def resolve_device(requested: str) -> Tuple[str, Optional[str]]:
    """Return (device, warning): 'auto' picks CUDA when usable; 'cuda' without one falls back."""
    if requested not in DEVICES and not requested.startswith('cuda:'):
        raise ValueError(f'device must be one of {", ".join(DEVICES)} (or cuda:N), '
                         f'not {requested!r}')
    if requested == 'cpu':
        return 'cpu', None
    import torch
    if torch.cuda.is_available():
        return ('cuda' if requested == 'auto' else requested), None
    if requested == 'auto':
        return 'cpu', None
    return 'cpu', f'device {requested!r} requested but CUDA is not available; using the CPU'


def release_device_memory(device: str) -> None:
    """Return cached GPU memory to the driver after a model on ``device`` is dropped."""
    if device.startswith('cuda'):
        import torch
        torch.cuda.empty_cache()
