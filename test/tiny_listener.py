"""
A tiny listener network for the registry test: the whole of what adding a model takes.

This file is the model; the one registration line is its module name in
``listener_head_ros.models.registry.BUILTIN_NETWORK_MODULES``, which the test adds. The network
maps standardised feature rows through one linear layer to the head angles and smooths them
with a causal exponential average, so it streams with a state of one frame.
"""

from dataclasses import dataclass
from typing import Optional, Tuple

import torch
from torch import nn

from listener_head_ros.models.base import AUDIO, TRANSCRIPT
from listener_head_ros.models.frame_features import FEATURE_DIM
from listener_head_ros.models.networks import FeatureNorm, split_mask
from listener_head_ros.models.registry import register_network


@dataclass(frozen=True)
class TinyListenerConfig:
    """Sizes of :class:`TinyListener`."""

    input_dim: int = FEATURE_DIM
    output_dim: int = 3
    decay: float = 0.8


@register_network
class TinyListener(nn.Module):
    """Linear read-out of the features, smoothed causally: ``y_t = a y_{t-1} + (1 - a) W x_t``."""

    architecture = 'tiny_listener'
    config_type = TinyListenerConfig
    inputs = frozenset({AUDIO})
    noise_dim = 0

    def __init__(self, config: Optional[TinyListenerConfig] = None) -> None:
        super().__init__()
        self.config = config or TinyListenerConfig()
        self.norm = FeatureNorm(self.config.input_dim)
        self.linear = nn.Linear(self.config.input_dim, self.config.output_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``(B, T, F)`` features to ``(B, T, D)`` outputs."""
        state, outputs = self.init_state(x.shape[0], x.device), []
        for t in range(x.shape[1]):
            y, state = self.step(x[:, t], state)
            outputs.append(y)
        return torch.stack(outputs, dim=1)

    def init_state(self, batch_size: int = 1, device: Optional[torch.device] = None
                   ) -> Tuple[torch.Tensor]:
        """Return the zero state: the previous output."""
        return (torch.zeros(batch_size, self.config.output_dim, device=device),)

    def step(self, x_t: torch.Tensor, state: Tuple[torch.Tensor]):
        """Map one ``(B, F)`` frame to ``(B, D)``; return it and the new state."""
        a = self.config.decay
        y = a * state[0] + (1.0 - a) * self.linear(self.norm(x_t))
        return y, (y,)

    def loss(self, outputs: torch.Tensor, target: torch.Tensor,
             mask: Optional[torch.Tensor] = None,
             noise: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Return the mean absolute error over the masked frames or columns."""
        frames, columns = split_mask(mask, target)
        error = (outputs.float() - target).abs()
        weight = (columns if columns is not None else (
            frames[..., None].expand_as(error) if frames is not None
            else torch.ones_like(error, dtype=torch.bool))).to(error.dtype)
        return (error * weight).sum() / weight.sum().clamp_min(1.0)

    def training_loss(self, x: torch.Tensor, target: torch.Tensor,
                      mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Return :meth:`loss` of :meth:`forward`."""
        return self.loss(self.forward(x), target, mask)

    def mean_pose(self, outputs: torch.Tensor) -> torch.Tensor:
        """Return the point prediction: the outputs."""
        return outputs

    def predictive(self, outputs: torch.Tensor):
        """Return the point prediction and no spread (deterministic)."""
        return outputs, None


@register_network
class TinyTranscriptListener(TinyListener):
    """The same network, declared as needing live transcripts (which no node supplies yet)."""

    architecture = 'tiny_transcript_listener'
    inputs = frozenset({AUDIO, TRANSCRIPT})
