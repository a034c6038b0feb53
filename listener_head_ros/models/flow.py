"""
A few-step generative listener: the causal GRU context and a conditional flow-matching head.

:class:`CausalGRUFlow` (``causal_gru_flow``) keeps the causal conv + GRU context encoder of
:class:`~listener_head_ros.models.networks.CausalGRUListener` (:class:`CausalGRUFront`) and
replaces its mixture density head with a small MLP velocity field ``v(x, tau, h_t)`` over the
``D`` target columns, trained by conditional flow matching with straight (rectified-flow)
paths: ``x0 ~ N(0, I)``, ``x1`` the standardised target, ``x_tau = (1 - tau) x0 + tau x1`` and
``v`` regressed on ``x1 - x0``, only on the columns the mask keeps. Targets are standardised by
the ``target_norm`` buffers (:meth:`CausalGRUFlow.set_target_statistics`, saved with the
weights; identity by default) and every prediction is returned in the targets' own units.

Sampling integrates ``dx/dtau = v`` from ``tau = 0`` to 1 with ``sample_steps`` midpoint steps
(two velocity evaluations each), starting from the noise times ``sqrt(temperature)`` (for a
Gaussian target: its variance times the temperature, as the mixture head does). The solution
is a deterministic, smooth function of the noise, so the AR(1)-correlated noise of
:class:`~listener_head_ros.models.learned.TorchListenerModel` gives smooth paths, and a
temperature towards 0 collapses every sample onto the zero-noise path, the point prediction.
The midpoint rule was chosen by measurement over Euler and Heun at the same number of
velocity evaluations (see ``benchmarks/README.md``, "Face model benchmark").

The network's outputs per frame are the context's projection into the velocity field's first
layer (computed once per frame, shared by every sample and solver step) and a per-column log
standard deviation: a Gaussian spread head, fit by its negative log-likelihood around the
flow's own conditional mean ``v(0, 0, h_t)`` (at ``tau = 0`` the regression target does not
depend on ``x0``, so the velocity there is ``E[x1 | h_t] - x0``) on the detached context, so it
does not shape the encoder. :meth:`CausalGRUFlow.predictive` returns the zero-noise solution
and that spread, so a listener's confidence ``exp(-rms std / confidence_scale)`` measures how
wide the learned distribution of reactions is at the frame, not the error of the point.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

from listener_head_ros.models.base import AUDIO
from listener_head_ros.models.frame_features import FEATURE_DIM
from listener_head_ros.models.networks import (
    CausalGRUFront, check_layer_mix, FeatureNorm, POSE_DIM, split_mask, State)
from listener_head_ros.models.registry import register_network

FlowOutputs = Tuple[torch.Tensor, torch.Tensor]  # first-layer context (..., W), log std (..., D)
MAX_SAMPLE_STEPS = 100  # solver steps per sample at most: each costs two MLP passes
HALF_LOG_TWO_PI = 0.5 * math.log(2.0 * math.pi)


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


@dataclass(frozen=True)
class FlowListenerConfig:
    """Hyper-parameters of :class:`CausalGRUFlow`; ``conv_kernel`` in frames."""

    input_dim: int = FEATURE_DIM
    conv_channels: int = 128
    conv_kernel: int = 5
    hidden_size: int = 256
    num_layers: int = 2
    dropout: float = 0.1
    output_dim: int = POSE_DIM
    flow_width: int = 128  # hidden units of the velocity MLP
    flow_layers: int = 2  # hidden layers of the velocity MLP
    time_dim: int = 16  # Fourier features of the flow time tau, an even number
    sample_steps: int = 4  # midpoint steps from noise to a sample, 2 MLP passes each
    min_log_std: float = -7.0  # of the spread head, in standardised target units
    max_log_std: float = 2.0
    layer_mix: Tuple[int, ...] = ()  # (first column, layers, width): networks.LayerMix

    def __post_init__(self) -> None:
        for name in ('input_dim', 'conv_channels', 'conv_kernel', 'hidden_size', 'num_layers',
                     'output_dim', 'flow_width', 'flow_layers', 'time_dim', 'sample_steps'):
            _require(getattr(self, name) >= 1, f'{name} must be >= 1')
        _require(0.0 <= self.dropout < 1.0, 'dropout must be in [0, 1)')
        _require(self.time_dim % 2 == 0, 'time_dim must be even (sine and cosine pairs)')
        _require(self.sample_steps <= MAX_SAMPLE_STEPS,
                 f'sample_steps must be <= {MAX_SAMPLE_STEPS}')
        _require(self.min_log_std < self.max_log_std, 'need min_log_std < max_log_std')
        object.__setattr__(self, 'layer_mix', check_layer_mix(self.layer_mix, self.input_dim))


def time_features(tau: torch.Tensor, dim: int) -> torch.Tensor:
    """Return ``sin(pi k tau), cos(pi k tau)`` for ``k = 1..dim/2``: (..., 1) -> (..., dim)."""
    frequencies = math.pi * torch.arange(1, dim // 2 + 1, device=tau.device, dtype=tau.dtype)
    angles = tau * frequencies
    return torch.cat((torch.sin(angles), torch.cos(angles)), dim=-1)


@register_network
class CausalGRUFlow(CausalGRUFront):
    """
    Causal conv + GRU context, and a conditional flow-matching head sampled in a few steps.

    ``x -> CausalGRUFront -> dropout -> h``; per frame the outputs are ``context = Linear(h)``,
    the velocity field's first-layer input from ``h``, and ``log_std = Linear(h.detach())``
    clamped to ``[min_log_std, max_log_std]``. The velocity is
    ``Linear(SiLU(... SiLU(W_x x + W_t time_features(tau) + context)))`` with ``flow_layers``
    hidden layers of ``flow_width`` units. The stream state is :class:`CausalGRUFront`'s.
    """

    architecture = 'causal_gru_flow'
    config_type = FlowListenerConfig
    inputs = frozenset({AUDIO})

    def __init__(self, config: Optional[FlowListenerConfig] = None) -> None:
        c = config if config is not None else FlowListenerConfig()
        super().__init__(c.input_dim, c.conv_channels, c.conv_kernel, c.hidden_size,
                         c.num_layers, c.dropout, c.layer_mix)
        self.config = c
        self.dropout = nn.Dropout(c.dropout)
        self.target_norm = FeatureNorm(c.output_dim)
        self.context = nn.Linear(c.hidden_size, c.flow_width)
        self.spread = nn.Linear(c.hidden_size, c.output_dim)
        self.flow_x = nn.Linear(c.output_dim, c.flow_width, bias=False)
        self.flow_t = nn.Linear(c.time_dim, c.flow_width, bias=False)
        self.flow_hidden = nn.ModuleList(
            nn.Linear(c.flow_width, c.flow_width) for _ in range(c.flow_layers - 1))
        self.flow_out = nn.Linear(c.flow_width, c.output_dim)
        taus = torch.arange(2 * c.sample_steps, dtype=torch.float32)[:, None] * (
            0.5 / c.sample_steps)
        self.register_buffer('solver_time_features', time_features(taus, c.time_dim),
                             persistent=False)  # (2 sample_steps, time_dim): the solver's taus

    @property
    def noise_dim(self) -> int:
        """Return the standard normal channels one sample draws: the flow's starting point."""
        return self.config.output_dim

    def set_target_statistics(self, mean: np.ndarray | torch.Tensor,
                              std: np.ndarray | torch.Tensor) -> None:
        """Standardise targets by per-column ``mean`` and ``std`` (saved with the weights)."""
        try:
            self.target_norm.set_statistics(mean, std)
        except (RuntimeError, ValueError) as error:
            raise ValueError(f'target statistics of {self.config.output_dim} columns: '
                             f'{error}') from None

    def _heads(self, h: torch.Tensor) -> FlowOutputs:
        c = self.config
        log_std = self.spread(h.detach()).clamp(c.min_log_std, c.max_log_std)
        return self.context(self.dropout(h)), log_std

    def forward(self, x: torch.Tensor) -> FlowOutputs:
        """Map ``(B, T, input_dim)`` features to (context (B, T, W), log std (B, T, D))."""
        return self._heads(self.encode(x))

    def step(self, x_t: torch.Tensor, state: State) -> Tuple[FlowOutputs, State]:
        """Map one ``(B, input_dim)`` frame to its outputs; return the new state."""
        h, state = self.encode_step(x_t, state)
        return self._heads(h), state

    def _velocity(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        """
        Return the velocity given the first layer's bias: context plus time projection.

        Sampling evaluates it ``2 sample_steps`` times per frame, so the layers before the last
        are applied as functions (a live step of one sample is bound by per-call overhead);
        ``flow_out`` stays a module call, whose forward hooks see every evaluation.
        """
        hidden = F.silu(F.linear(x, self.flow_x.weight).add_(bias))
        for layer in self.flow_hidden:
            hidden = F.silu(F.linear(hidden, layer.weight, layer.bias))
        return self.flow_out(hidden)

    def _time_bias(self, tau: torch.Tensor) -> torch.Tensor:
        """Return the first layer's input from the flow times ``tau`` (..., 1): (..., W)."""
        return self.flow_t(time_features(tau, self.config.time_dim))

    def velocity(self, x: torch.Tensor, tau: torch.Tensor, context: torch.Tensor
                 ) -> torch.Tensor:
        """Return ``v(x, tau, h)`` (..., D) for standardised ``x`` and ``tau`` (..., 1)."""
        return self._velocity(x, context + self._time_bias(tau))

    def _solve(self, context: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Integrate from standardised ``x`` at ``tau = 0`` to 1: ``sample_steps`` midpoints."""
        steps = self.config.sample_steps
        size = 1.0 / steps
        biases = context.unsqueeze(-2) + self.flow_t(self.solver_time_features.to(context))
        for k in range(steps):
            half = torch.add(x, self._velocity(x, biases[..., 2 * k, :]), alpha=0.5 * size)
            x = torch.add(x, self._velocity(half, biases[..., 2 * k + 1, :]), alpha=size)
        return x

    def _destandardise(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.target_norm.std + self.target_norm.mean

    def draw(self, outputs: FlowOutputs, noise: torch.Tensor, temperature: float
             ) -> torch.Tensor:
        """Return samples (..., S, D) for frames (...) from standard normal noise (..., S, D)."""
        _require(temperature > 0.0, 'temperature must be positive')
        context = outputs[0]
        start = noise.to(context) * math.sqrt(temperature)
        return self._destandardise(self._solve(context.unsqueeze(-2), start))

    def predictive(self, outputs: FlowOutputs) -> Tuple[torch.Tensor, torch.Tensor]:
        """Return the zero-noise solution and the spread head's std per column, (..., D) each."""
        context, log_std = outputs
        start = context.new_zeros(*context.shape[:-1], self.config.output_dim)
        return self._destandardise(self._solve(context, start)), self.predictive_std(outputs)

    def predictive_std(self, outputs: FlowOutputs) -> torch.Tensor:
        """Return the spread head's std per column (..., D), without solving the flow."""
        return torch.exp(outputs[1]) * self.target_norm.std

    def mean_pose(self, outputs: FlowOutputs) -> torch.Tensor:
        """Return the point prediction of :meth:`forward`'s outputs: the zero-noise solution."""
        return self.predictive(outputs)[0]

    def predict_mean(self, x: torch.Tensor) -> torch.Tensor:
        """Return the point prediction ``(B, T, output_dim)``."""
        return self.mean_pose(self.forward(x))

    def loss(self, outputs: FlowOutputs, target: torch.Tensor,
             mask: Optional[torch.Tensor] = None, noise: Optional[torch.Tensor] = None
             ) -> torch.Tensor:
        """
        Return the flow-matching error plus the spread head's NLL, over the masked columns.

        ``target`` (B, T, D) in its own units; ``mask`` (B, T) or (B, T, D) (see
        :func:`~listener_head_ros.models.networks.split_mask`); ``noise`` (B, T, D + 1)
        standard normal: the starting points ``x0`` and, through the normal CDF, the uniform
        flow times (drawn from torch's generator when None). Every column enters ``x_tau``
        (non-finite targets as 0), so the per-stream losses of one step share one flow; each
        term is a mean over the masked-in (frame, column) entries.
        """
        context, log_std = outputs
        dim = target.shape[-1]
        frames, columns = split_mask(mask, target)
        if columns is not None:
            known = columns.float()
        elif frames is not None:
            known = frames[..., None].float().expand(target.shape)
        else:
            known = torch.ones_like(target, dtype=torch.float32)
        if noise is None:
            noise = torch.randn(*target.shape[:-1], dim + 1, device=target.device)
        x1 = self.target_norm(target.float())
        x1 = torch.where(torch.isfinite(x1), x1, torch.zeros_like(x1))
        x0, tau = noise[..., :dim].float(), torch.special.ndtr(noise[..., dim:].float())
        velocity = self.velocity((1.0 - tau) * x0 + tau * x1, tau, context).float()
        flow_error = (velocity - (x1 - x0)) ** 2
        with torch.no_grad():
            mean = self.velocity(torch.zeros_like(x1), torch.zeros_like(tau), context).float()
        log_std = log_std.float()
        nll = 0.5 * ((x1 - mean) * torch.exp(-log_std)) ** 2 + log_std + HALF_LOG_TWO_PI
        return ((flow_error + nll) * known).sum() / known.sum().clamp_min(1.0)

    def training_loss(self, x: torch.Tensor, target: torch.Tensor,
                      mask: Optional[torch.Tensor] = None, noise: Optional[torch.Tensor] = None
                      ) -> torch.Tensor:
        """Return :meth:`loss` of :meth:`forward`."""
        return self.loss(self.forward(x), target, mask, noise)
