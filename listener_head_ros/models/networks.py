"""
Causal listener networks in plain torch: feature rows in, head angles out, batched or streaming.

Both networks take raw feature rows from :mod:`listener_head_ros.models.frame_features`, shape
``(B, T, F)``, standardise them with :class:`FeatureNorm` buffers (filled by training, saved with
the weights) and predict ``(roll, pitch, yaw)`` in radians per frame. Each has:

- ``forward(x)``: the batched pass used in training and offline evaluation;
- ``init_state(batch_size)`` and ``step(x_t, state) -> (output, state)``: the streaming pass,
  one frame at a time, equal to ``forward`` to float tolerance (tests enforce it);
- ``loss(outputs, target, mask, noise=None)``: the training objective on ``forward``'s
  outputs, so that under ``DistributedDataParallel`` the loop calls ``ddp(x)`` then
  ``ddp.module.loss(...)``; ``noise`` (B, T, D + 1) standard normal, when given, is the crops'
  own training noise (:class:`~listener_head_ros.training.dataset.DialogCrops`), which a
  stochastic objective uses instead of torch's generator (these two objectives ignore it);
- ``mean_pose(outputs)`` and ``predict_mean(x)``: point predictions ``(B, T, 3)`` for MAE;
- ``training_loss(x, target, mask)``: ``loss(forward(x), target, mask)``; a mask is (B, T)
  for whole frames or (B, T, D) for each target column (see :func:`split_mask`);
- ``predictive(outputs) -> (mean, std or None)`` per column, ``noise_dim`` (0 for a
  deterministic network) and, when generative, ``draw(outputs, noise, temperature)``: what
  :class:`~listener_head_ros.models.learned.TorchListenerModel` needs to decode any network;
- the class attributes ``architecture``, ``config_type`` and ``inputs`` (see
  :data:`listener_head_ros.models.base.INPUTS`), read by :func:`register_network`.

:class:`CausalActiveListener` re-implements the Active Listener graph model causally: GraphSAGE
layers over the chain of frames, where each frame aggregates its ``P`` past frames with an LSTM
(as ``torch_geometric``'s ``SAGEConv(aggr='lstm')``), then a Gaussian smoothing layer over past
outputs only. ``future_neighbors > 0`` restores the original's look-ahead; that variant cannot
stream and only serves to show the equivalence with ``torch_geometric``.

:class:`CausalGRUListener` is the stronger streaming model: a causal convolution over the last
``conv_kernel`` frames, a multi-layer GRU (constant cost and memory per frame, unbounded context
for the seconds-long timing of back-channels, where a TCN would need deep dilated stacks and a
ring buffer per layer) and a mixture density head of ``M`` diagonal Gaussians over the three
angles, so several different plausible reactions can be sampled for the same speech.
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
from listener_head_ros.models.registry import build_network, register_network  # noqa: F401

POSE_DIM = 3  # roll, pitch, yaw in radians
State = Tuple[torch.Tensor, ...]
Mixture = Tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # logits, means, log_stds


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def split_mask(mask: Optional[torch.Tensor], target: torch.Tensor
               ) -> Tuple[Optional[torch.Tensor], Optional[torch.Tensor]]:
    """
    Return (frame mask (B, T), column mask (B, T, D) or None) of a training mask.

    A mask is (B, T): whole frames count or not; or (B, T, D): each target column on its own,
    a frame counting when any of its columns does.
    """
    if mask is None or mask.dim() == target.dim() - 1:
        return mask, None
    return mask.any(-1), mask


def _masked_mean(values: torch.Tensor, mask: Optional[torch.Tensor]) -> torch.Tensor:
    """Average ``values`` (B, T) over the frames where ``mask`` is true (all when None)."""
    if mask is None:
        return values.mean()
    mask = mask.to(values.dtype)
    return (values * mask).sum() / mask.sum().clamp_min(1.0)


@dataclass(frozen=True)
class ActiveListenerConfig:
    """Hyper-parameters of :class:`CausalActiveListener`; sizes in frames."""

    input_dim: int = FEATURE_DIM
    hidden_dim: int = 128
    num_layers: int = 2
    past_neighbors: int = 8
    future_neighbors: int = 0  # > 0: the non-causal original (look-ahead), cannot stream
    dropout: float = 0.1
    smoothing_size: int = 5
    smoothing_sigma: float = 1.5
    output_dim: int = POSE_DIM

    def __post_init__(self) -> None:
        for name in ('input_dim', 'hidden_dim', 'num_layers', 'past_neighbors',
                     'smoothing_size', 'output_dim'):
            _require(getattr(self, name) >= 1, f'{name} must be >= 1')
        _require(self.future_neighbors >= 0, 'future_neighbors must be >= 0')
        _require(0.0 <= self.dropout < 1.0, 'dropout must be in [0, 1)')
        _require(self.smoothing_sigma > 0.0, 'smoothing_sigma must be positive')


@dataclass(frozen=True)
class GRUListenerConfig:
    """Hyper-parameters of :class:`CausalGRUListener`; ``conv_kernel`` in frames."""

    input_dim: int = FEATURE_DIM
    conv_channels: int = 128
    conv_kernel: int = 5
    hidden_size: int = 256
    num_layers: int = 2
    num_mixtures: int = 5
    dropout: float = 0.1
    output_dim: int = POSE_DIM
    min_log_std: float = -7.0  # exp(-7) rad ~ 0.05 degrees
    max_log_std: float = 1.0
    layer_mix: Tuple[int, ...] = ()  # (first column, layers, width): see LayerMix; () none

    def __post_init__(self) -> None:
        for name in ('input_dim', 'conv_channels', 'conv_kernel', 'hidden_size', 'num_layers',
                     'num_mixtures', 'output_dim'):
            _require(getattr(self, name) >= 1, f'{name} must be >= 1')
        _require(0.0 <= self.dropout < 1.0, 'dropout must be in [0, 1)')
        _require(self.min_log_std < self.max_log_std, 'need min_log_std < max_log_std')
        object.__setattr__(self, 'layer_mix', check_layer_mix(self.layer_mix, self.input_dim))


class FeatureNorm(nn.Module):
    """Standardise feature rows with per-column ``mean`` and ``std`` buffers (saved weights)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.register_buffer('mean', torch.zeros(dim))
        self.register_buffer('std', torch.ones(dim))

    def set_statistics(self, mean: np.ndarray | torch.Tensor,
                       std: np.ndarray | torch.Tensor) -> None:
        """Copy per-column statistics, e.g. from :func:`~.frame_features.feature_statistics`."""
        mean = torch.as_tensor(mean, dtype=self.mean.dtype).reshape(self.mean.shape)
        std = torch.as_tensor(std, dtype=self.std.dtype).reshape(self.std.shape)
        _require(bool(torch.isfinite(mean).all()), 'feature means must be finite')
        _require(bool((torch.isfinite(std) & (std > 0)).all()), 'feature stds must be positive')
        self.mean.copy_(mean)
        self.std.copy_(std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return ``(x - mean) / std`` over the last dimension."""
        return (x - self.mean) / self.std


def check_layer_mix(layer_mix: Tuple[float, ...], input_dim: int) -> Tuple[int, ...]:
    """Return a ``layer_mix`` setting as integers; raise ValueError unless it fits the input."""
    if not layer_mix:
        return ()
    _require(len(layer_mix) == 3 and all(float(v).is_integer() for v in layer_mix),
             'layer_mix must be three whole numbers: first column, layers, width')
    start, layers, width = (int(v) for v in layer_mix)
    _require(start >= 0 and layers >= 2 and width >= 1 and start + layers * width <= input_dim,
             f'layer_mix {list(layer_mix)} must name >= 2 blocks of columns inside the '
             f'{input_dim} input columns')
    return (start, layers, width)


class LayerMix(nn.Module):
    """
    A learned weighted sum of layers: ``sum_l softmax(w)_l h_l`` over ``layers`` column blocks.

    The rows hold ``layers`` blocks of ``width`` columns from column ``start`` on (the hidden
    states of several layers of a speech encoder, each standardised); they are replaced by
    their weighted sum, with weights learned with the network (uniform at the start), as
    SUPERB weighs the layers of a frozen encoder.
    """

    def __init__(self, start: int, layers: int, width: int) -> None:
        super().__init__()
        self.start, self.layers, self.width = start, layers, width
        self.logits = nn.Parameter(torch.zeros(layers))

    def output_dim(self, input_dim: int) -> int:
        """Return the row width after mixing ``input_dim`` columns."""
        return input_dim - (self.layers - 1) * self.width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Mix ``(..., input_dim)`` rows into ``(..., output_dim)``."""
        stop = self.start + self.layers * self.width
        blocks = x[..., self.start:stop].unflatten(-1, (self.layers, self.width))
        mixed = (blocks * torch.softmax(self.logits, 0)[:, None]).sum(-2)
        return torch.cat((x[..., :self.start], mixed, x[..., stop:]), -1)


def gaussian_weights(size: int, sigma: float) -> torch.Tensor:
    """Return the causal kernel ``w[k]`` for lag ``k = 0..size-1``: a half Gaussian, sum 1."""
    lags = torch.arange(size, dtype=torch.float64)
    weights = torch.exp(-0.5 * (lags / sigma) ** 2)
    return (weights / weights.sum()).float()


class CausalGaussianSmoothing(nn.Module):
    """
    Smooth outputs over the past only: ``y_t = sum_k w_k z_{t-k}``, ``k = 0..size-1``.

    Frames before the stream start count as zero (the neutral pose). The kernel is fixed by
    the configuration, so it is not part of the saved weights.
    """

    def __init__(self, size: int, sigma: float) -> None:
        super().__init__()
        self.register_buffer('weights', gaussian_weights(size, sigma), persistent=False)

    @property
    def size(self) -> int:
        """Return the number of taps, current frame included."""
        return int(self.weights.numel())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Smooth ``(B, T, D)`` along time."""
        windows = F.pad(z, (0, 0, self.size - 1, 0)).unfold(1, self.size, 1)  # oldest first
        return windows @ self.weights.flip(0)

    def step(self, z_t: torch.Tensor, history: torch.Tensor
             ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Smooth one ``(B, D)`` frame given the ``(B, size-1, D)`` previous raw outputs."""
        window = torch.cat((history, z_t[:, None]), dim=1)
        return torch.einsum('bkd,k->bd', window, self.weights.flip(0)), window[:, 1:]


class ChainSAGELayer(nn.Module):
    """
    GraphSAGE with LSTM aggregation over a chain of frames: ``lin_l(LSTM(neighbours)) + lin_r(h)``.

    The neighbours of frame ``t`` are frames ``t-past .. t-1`` then ``t+1 .. t+future``, in time
    order; frames outside the sequence are zero. The LSTM runs over them and its last output is
    the aggregate, as in ``torch_geometric.nn.SAGEConv(aggr='lstm')`` whose parameter names
    (``lstm``, ``lin_l``, ``lin_r``) this layer keeps.
    """

    def __init__(self, in_dim: int, out_dim: int, past: int, future: int = 0) -> None:
        super().__init__()
        self.past, self.future = past, future
        self.lstm = nn.LSTM(in_dim, in_dim, batch_first=True)
        self.lin_l = nn.Linear(in_dim, out_dim)
        self.lin_r = nn.Linear(in_dim, out_dim, bias=False)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """Map ``(B, T, in_dim)`` node states to ``(B, T, out_dim)``."""
        batch, steps, dim = h.shape
        width = self.past + 1 + self.future
        windows = F.pad(h, (0, 0, self.past, self.future)).unfold(1, width, 1)
        windows = windows.transpose(2, 3)  # (B, T, window, dim), oldest first
        neighbors = torch.cat((windows[:, :, :self.past], windows[:, :, self.past + 1:]), dim=2)
        flat = neighbors.reshape(batch * steps, self.past + self.future, dim)
        aggregate = self.lstm(flat)[0][:, -1].reshape(batch, steps, dim)
        return self.lin_l(aggregate) + self.lin_r(h)

    def step(self, h_t: torch.Tensor, history: torch.Tensor
             ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Map one ``(B, in_dim)`` frame given its ``(B, past, in_dim)`` predecessors."""
        _require(self.future == 0, 'a layer with future neighbours cannot stream')
        out = self.lin_l(self.lstm(history)[0][:, -1]) + self.lin_r(h_t)
        return out, torch.cat((history[:, 1:], h_t[:, None]), dim=1)


@register_network
class CausalActiveListener(nn.Module):
    """
    The Active Listener graph model, causal: SAGE-LSTM layers over past frames, then smoothing.

    ``x -> norm -> ReLU(Linear) -> [ReLU(SAGE) -> dropout] x num_layers -> Linear -> smoothing``.
    The stream state is each layer's last ``past_neighbors`` inputs and the last
    ``smoothing_size - 1`` raw outputs.
    """

    architecture = 'causal_active_listener'
    config_type = ActiveListenerConfig
    inputs = frozenset({AUDIO})
    noise_dim = 0  # deterministic: no sampling

    def __init__(self, config: Optional[ActiveListenerConfig] = None) -> None:
        super().__init__()
        self.config = c = config if config is not None else ActiveListenerConfig()
        self.norm = FeatureNorm(c.input_dim)
        self.input_proj = nn.Linear(c.input_dim, c.hidden_dim)
        self.layers = nn.ModuleList(
            ChainSAGELayer(c.hidden_dim, c.hidden_dim, c.past_neighbors, c.future_neighbors)
            for _ in range(c.num_layers))
        self.dropout = nn.Dropout(c.dropout)
        self.head = nn.Linear(c.hidden_dim, c.output_dim)
        self.smoothing = CausalGaussianSmoothing(c.smoothing_size, c.smoothing_sigma)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Return the ``(B, T, hidden_dim)`` node states after the last SAGE layer."""
        h = torch.relu(self.input_proj(self.norm(x)))
        for layer in self.layers:
            h = self.dropout(torch.relu(layer(h)))
        return h

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``(B, T, input_dim)`` features to ``(B, T, output_dim)`` angles."""
        return self.smoothing(self.head(self.encode(x)))

    def mean_pose(self, outputs: torch.Tensor) -> torch.Tensor:
        """Return the point prediction from :meth:`forward`'s outputs: the outputs themselves."""
        return outputs

    def loss(self, outputs: torch.Tensor, target: torch.Tensor,
             mask: Optional[torch.Tensor] = None,
             noise: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Return the mean absolute error over the masked frames (or columns, see split_mask)."""
        frames, columns = split_mask(mask, target)
        error = (outputs.float() - target).abs()
        if columns is None:
            return _masked_mean(error.mean(-1), frames)
        columns = columns.to(error.dtype)
        return (error * columns).sum() / columns.sum().clamp_min(1.0)

    def predictive(self, outputs: torch.Tensor) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """Return the point prediction (..., D) and no spread: the network is deterministic."""
        return outputs, None

    def predict_mean(self, x: torch.Tensor) -> torch.Tensor:
        """Return the point prediction ``(B, T, output_dim)``."""
        return self.mean_pose(self.forward(x))

    def training_loss(self, x: torch.Tensor, target: torch.Tensor,
                      mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Return :meth:`loss` of :meth:`forward`."""
        return self.loss(self.forward(x), target, mask)

    def init_state(self, batch_size: int = 1, device: Optional[torch.device] = None) -> State:
        """Return the state before the first frame: zero history everywhere."""
        c, device = self.config, device or self.head.weight.device
        layers = tuple(torch.zeros(batch_size, c.past_neighbors, c.hidden_dim, device=device)
                       for _ in self.layers)
        outputs = torch.zeros(batch_size, c.smoothing_size - 1, c.output_dim, device=device)
        return layers + (outputs,)

    def step(self, x_t: torch.Tensor, state: State) -> Tuple[torch.Tensor, State]:
        """Map one ``(B, input_dim)`` frame to ``(B, output_dim)`` angles; return the new state."""
        h = torch.relu(self.input_proj(self.norm(x_t)))
        histories = []
        for layer, history in zip(self.layers, state[:-1]):
            out, history = layer.step(h, history)
            histories.append(history)
            h = self.dropout(torch.relu(out))
        y, outputs = self.smoothing.step(self.head(h), state[-1])
        return y, tuple(histories) + (outputs,)


def mdn_log_likelihood(logits: torch.Tensor, means: torch.Tensor, log_stds: torch.Tensor,
                       target: torch.Tensor, columns: Optional[torch.Tensor] = None
                       ) -> torch.Tensor:
    """
    Return ``log p(target)`` per frame, float32; shapes (..., M), (..., M, D) x 2, (..., D).

    ``columns`` (..., D), when given, marks the target columns that are known: the others are
    marginalised out, which for diagonal components means leaving them out of the density.
    """
    logits, means, log_stds, target = (t.float() for t in (logits, means, log_stds, target))
    known = torch.ones_like(target) if columns is None else columns.to(target.dtype)
    target = torch.where(known > 0, target, torch.zeros_like(target))
    z = (target[..., None, :] - means) * torch.exp(-log_stds)
    per_column = -0.5 * z * z - log_stds - 0.5 * math.log(2.0 * math.pi)
    component = (per_column * known[..., None, :]).sum(-1)
    return torch.logsumexp(torch.log_softmax(logits, dim=-1) + component, dim=-1)


def mdn_nll(logits: torch.Tensor, means: torch.Tensor, log_stds: torch.Tensor,
            target: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Return the mean negative log-likelihood (nats per frame) over the masked frames."""
    frames, columns = split_mask(mask, target)
    return _masked_mean(-mdn_log_likelihood(logits, means, log_stds, target, columns), frames)


def mixture_mean(logits: torch.Tensor, means: torch.Tensor) -> torch.Tensor:
    """Return the mixture mean ``sum_m pi_m mu_m``, shape (..., D)."""
    return (torch.softmax(logits, dim=-1)[..., None] * means).sum(-2)


def mixture_moments(logits: torch.Tensor, means: torch.Tensor,
                    log_stds: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Return the mixture's mean and per-column variance (law of total variance), (..., D)."""
    weights = torch.softmax(logits, dim=-1)[..., None]
    mean = (weights * means).sum(-2)
    variance = (weights * (torch.exp(2.0 * log_stds) + (means - mean[..., None, :]) ** 2)).sum(-2)
    return mean, variance


def sample_mixture(logits: torch.Tensor, means: torch.Tensor, log_stds: torch.Tensor,
                   noise: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """
    Draw from the mixture given standard normal ``noise`` of shape (..., D + 1).

    The last noise channel picks the component by inverse CDF of ``softmax(logits / T)``; the
    others scale the component's standard deviation times ``sqrt(T)`` (sketch-rnn style). A
    deterministic function of the noise, so correlated noise gives smooth sample paths.
    """
    _require(temperature > 0.0, 'temperature must be positive')
    dim = means.shape[-1]
    cdf = torch.cumsum(torch.softmax(logits / temperature, dim=-1), dim=-1)
    uniform = torch.special.ndtr(noise[..., dim])
    index = (uniform[..., None] > cdf).sum(-1).clamp(max=logits.shape[-1] - 1)
    gather = index[..., None, None].expand(*index.shape, 1, dim)
    mean = means.gather(-2, gather).squeeze(-2)
    std = torch.exp(log_stds.gather(-2, gather).squeeze(-2))
    return mean + std * math.sqrt(temperature) * noise[..., :dim]


class CausalGRUFront(nn.Module):
    """
    The causal context encoder of the GRU networks: feature norm, causal conv, multi-layer GRU.

    ``x -> norm -> GELU(Conv1d over the last conv_kernel frames) -> GRU`` gives one
    ``(hidden_size,)`` context per frame. Networks subclass it and add their head, so its modules
    keep the names ``norm``, ``conv`` and ``gru`` in their saved weights. The stream state is
    the last ``conv_kernel - 1`` normalised input rows (zero before the start) and the GRU
    hidden state.
    """

    def __init__(self, input_dim: int, conv_channels: int, conv_kernel: int, hidden_size: int,
                 num_layers: int, dropout: float, layer_mix: Tuple[int, ...] = ()) -> None:
        super().__init__()
        self.norm = FeatureNorm(input_dim)
        self.mix = LayerMix(*layer_mix) if layer_mix else None
        width = self.mix.output_dim(input_dim) if self.mix is not None else input_dim
        self.conv = nn.Conv1d(width, conv_channels, conv_kernel)
        self.gru = nn.GRU(conv_channels, hidden_size, num_layers, batch_first=True,
                          dropout=dropout if num_layers > 1 else 0.0)

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        """Return standardised rows, their speech layers mixed when ``layer_mix`` is set."""
        xn = self.norm(x)
        return xn if self.mix is None else self.mix(xn)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``(B, T, input_dim)`` features to ``(B, T, hidden_size)`` contexts."""
        xn = F.pad(self.normalise(x), (0, 0, self.conv.kernel_size[0] - 1, 0))
        front = F.gelu(self.conv(xn.transpose(1, 2))).transpose(1, 2)
        return self.gru(front)[0]

    def init_state(self, batch_size: int = 1, device: Optional[torch.device] = None) -> State:
        """Return the state before the first frame: zero input history and hidden state."""
        device = device or self.conv.weight.device
        return (torch.zeros(batch_size, self.conv.kernel_size[0] - 1, self.conv.in_channels,
                            device=device),
                torch.zeros(self.gru.num_layers, batch_size, self.gru.hidden_size,
                            device=device))

    def encode_step(self, x_t: torch.Tensor, state: State) -> Tuple[torch.Tensor, State]:
        """Map one ``(B, input_dim)`` frame to its ``(B, hidden_size)`` context and new state."""
        window = torch.cat((state[0], self.normalise(x_t)[:, None]), dim=1)
        front = F.gelu(F.conv1d(window.transpose(1, 2), self.conv.weight, self.conv.bias))
        out, hidden = self.gru(front.transpose(1, 2), state[1])
        return out[:, 0], (window[:, 1:], hidden)


@register_network
class CausalGRUListener(CausalGRUFront):
    """
    Causal conv front, multi-layer GRU and a mixture density head over (roll, pitch, yaw).

    ``x -> norm -> GELU(Conv1d over the last conv_kernel frames) -> GRU -> dropout -> Linear``,
    whose output splits into ``M`` logits, ``M x D`` means and ``M x D`` log standard deviations
    (clamped to ``[min_log_std, max_log_std]``). The stream state is the last
    ``conv_kernel - 1`` normalised input rows (zero before the start) and the GRU hidden state.
    """

    architecture = 'causal_gru_mdn'
    config_type = GRUListenerConfig
    inputs = frozenset({AUDIO})

    def __init__(self, config: Optional[GRUListenerConfig] = None) -> None:
        c = config if config is not None else GRUListenerConfig()
        super().__init__(c.input_dim, c.conv_channels, c.conv_kernel, c.hidden_size,
                         c.num_layers, c.dropout, c.layer_mix)
        self.config = c
        self.dropout = nn.Dropout(c.dropout)
        self.head = nn.Linear(c.hidden_size, c.num_mixtures * (1 + 2 * c.output_dim))

    def _mixture(self, h: torch.Tensor) -> Mixture:
        c = self.config
        out = self.head(self.dropout(h))
        logits, rest = out.split((c.num_mixtures, 2 * c.num_mixtures * c.output_dim), dim=-1)
        means, log_stds = rest.unflatten(-1, (c.num_mixtures, 2 * c.output_dim)).chunk(2, -1)
        return logits, means, log_stds.clamp(c.min_log_std, c.max_log_std)

    def forward(self, x: torch.Tensor) -> Mixture:
        """Map ``(B, T, input_dim)`` features to mixture parameters: (B,T,M), (B,T,M,D) x 2."""
        return self._mixture(self.encode(x))

    def step(self, x_t: torch.Tensor, state: State) -> Tuple[Mixture, State]:
        """Map one ``(B, input_dim)`` frame to its mixture parameters; return the new state."""
        h, state = self.encode_step(x_t, state)
        return self._mixture(h), state

    def mean_pose(self, outputs: Mixture) -> torch.Tensor:
        """Return the mixture mean of :meth:`forward`'s outputs: the point prediction for MAE."""
        return mixture_mean(outputs[0], outputs[1])

    @property
    def noise_dim(self) -> int:
        """Return the standard normal channels one sample draws: one per column, one picker."""
        return self.config.output_dim + 1

    def predictive(self, outputs: Mixture) -> Tuple[torch.Tensor, torch.Tensor]:
        """Return the mixture mean and standard deviation per column, (..., D) each."""
        mean, variance = mixture_moments(*outputs)
        return mean, variance.sqrt()

    def draw(self, outputs: Mixture, noise: torch.Tensor, temperature: float) -> torch.Tensor:
        """Return samples (..., S, D) for frames (...) from noise (..., S, noise_dim)."""
        logits, means, log_stds = outputs
        num = noise.shape[-2]
        logits = logits.unsqueeze(-2).expand(*logits.shape[:-1], num, logits.shape[-1])
        means = means.unsqueeze(-3).expand(*means.shape[:-2], num, *means.shape[-2:])
        log_stds = log_stds.unsqueeze(-3).expand(*log_stds.shape[:-2], num, *log_stds.shape[-2:])
        return sample_mixture(logits, means, log_stds, noise.to(logits), temperature)

    def loss(self, outputs: Mixture, target: torch.Tensor,
             mask: Optional[torch.Tensor] = None,
             noise: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Return :func:`mdn_nll` of ``target`` (B, T, D) over frames where ``mask`` is true."""
        return mdn_nll(*outputs, target, mask)

    def predict_mean(self, x: torch.Tensor) -> torch.Tensor:
        """Return the mixture mean ``(B, T, output_dim)``."""
        return self.mean_pose(self.forward(x))

    def sample(self, x: torch.Tensor, generator: Optional[torch.Generator] = None,
               temperature: float = 1.0) -> torch.Tensor:
        """Draw one ``(B, T, output_dim)`` reaction, independent per frame, from ``generator``."""
        logits, means, log_stds = self.forward(x)
        noise = torch.randn(*logits.shape[:-1], means.shape[-1] + 1, generator=generator,
                            device=logits.device, dtype=logits.dtype)
        return sample_mixture(logits, means, log_stds, noise, temperature)

    def training_loss(self, x: torch.Tensor, target: torch.Tensor,
                      mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Return :meth:`loss` of :meth:`forward`."""
        return self.loss(self.forward(x), target, mask)


def count_parameters(module: nn.Module) -> int:
    """Return the number of trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
