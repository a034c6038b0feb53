"""
Learned listener models behind the streaming interface, and their checkpoints.

:class:`TorchListenerModel` chains the causal feature extractor, the feature rows of
:mod:`~listener_head_ros.models.frame_features` and a network from
:mod:`~listener_head_ros.models.networks`. :meth:`~TorchListenerModel.step` feeds the network
one frame at a time from its stream state; :meth:`~TorchListenerModel.run` extracts the
features in one batch and runs the batched forward pass; both give the same frames.

With a mixture density network, ``mode='sample'`` draws ``num_samples`` reactions per frame
(the frame carries the first; :attr:`~TorchListenerModel.last_samples` holds all) from a numpy
generator seeded at every :meth:`~TorchListenerModel.reset`, with optional AR(1) correlation of
the noise across frames so that sampled paths are smooth. ``mode='mean'`` outputs the mixture
mean. Confidence is ``exp(-rms predictive std / confidence_scale)``, and 1 for deterministic
networks. The face stays neutral.

Checkpoints (:func:`save_learned_checkpoint`) hold the network weights and normalisation
buffers in ``model.safetensors`` and, in ``config.json``, the architecture, the network,
feature and inference settings. Importing this module registers the architectures with
:func:`listener_head_ros.models.checkpoint.load_checkpoint`, which imports it on demand.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Tuple

import numpy as np
import torch
from torch import nn

from listener_head_ros.features import (
    FeatureConfig,
    StreamingFeatureExtractor,
    extract_features,
)
from listener_head_ros.models.base import ListenerFrame, StreamingListenerModel
from listener_head_ros.models.checkpoint import register_model_type, save_checkpoint
from listener_head_ros.models.device import resolve_device
from listener_head_ros.models.frame_features import feature_dim, feature_matrix, feature_vector
from listener_head_ros.models.networks import (
    NETWORKS,
    POSE_DIM,
    build_network,
    CausalGRUListener,
    mixture_mean,
    mixture_variance,
    sample_mixture,
)

MODES = ('mean', 'sample')
NOISE_DIM = POSE_DIM + 1  # per sample: one channel per angle, one picks the component


@dataclass(frozen=True)
class InferenceConfig:
    """How a learned model turns network outputs into poses."""

    mode: str = 'mean'  # 'mean': mixture mean; 'sample': draw from the mixture
    num_samples: int = 1  # reactions drawn per frame in 'sample' mode
    temperature: float = 1.0
    seed: int = 0
    noise_correlation: float = 0.0  # AR(1) coefficient of the sampling noise between frames
    confidence_scale: float = 0.1  # rad

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f'mode must be one of {MODES}, not {self.mode!r}')
        if self.num_samples < 1 or not self.temperature > 0.0 or not self.confidence_scale > 0:
            raise ValueError('need num_samples >= 1, temperature > 0, confidence_scale > 0')
        if not 0.0 <= self.noise_correlation < 1.0:
            raise ValueError('noise_correlation must be in [0, 1)')


class TorchListenerModel(StreamingListenerModel):
    """A torch network behind :class:`StreamingListenerModel`, on the CPU or a GPU."""

    def __init__(self, network: nn.Module, feature_config: Optional[FeatureConfig] = None,
                 inference: Optional[InferenceConfig] = None, device: str = 'cpu') -> None:
        self.feature_config = feature_config if feature_config is not None else FeatureConfig()
        self.inference = inference if inference is not None else InferenceConfig()
        self.sample_rate = self.feature_config.sample_rate
        self.name = network.architecture
        self.mixture = isinstance(network, CausalGRUListener)
        if self.inference.mode == 'sample' and not self.mixture:
            raise ValueError(f"mode 'sample' needs a mixture density network, not {self.name}")
        expected = feature_dim(self.feature_config.n_mels)
        if network.config.input_dim != expected or network.config.output_dim != POSE_DIM:
            raise ValueError(f'the network must map {expected} feature columns (n_mels='
                             f'{self.feature_config.n_mels}) to {POSE_DIM} angles, not '
                             f'{network.config.input_dim} to {network.config.output_dim}')
        self.device, warning = resolve_device(device)
        if warning:
            warnings.warn(warning, RuntimeWarning, stacklevel=2)
        self.network = network.to(self.device).eval()
        self._extractor = StreamingFeatureExtractor(self.feature_config)
        samples = self.inference.num_samples if self.inference.mode == 'sample' else 1
        self.last_samples = np.zeros((samples, POSE_DIM), dtype=np.float32)
        self.reset()

    @property
    def hop_length(self) -> int:
        """Return the number of samples consumed per frame."""
        return self.feature_config.hop_length

    def reset(self) -> None:
        """Forget the audio and network history and reseed the sampling noise."""
        self._extractor.reset()
        self._state = self.network.init_state(1, torch.device(self.device))
        self._rng = np.random.default_rng(self.inference.seed)
        self._noise: Optional[np.ndarray] = None

    def _next_noise(self) -> np.ndarray:
        """Return the ``(num_samples, NOISE_DIM)`` standard normal noise of the next frame."""
        fresh = self._rng.standard_normal((self.inference.num_samples, NOISE_DIM))
        rho = self.inference.noise_correlation
        self._noise = fresh if self._noise is None else (
            rho * self._noise + math.sqrt(1.0 - rho * rho) * fresh)
        return self._noise

    def _poses(self, outputs: torch.Tensor | Tuple[torch.Tensor, ...],
               noise: Optional[np.ndarray]) -> Tuple[torch.Tensor, torch.Tensor]:
        """Return poses (..., S, 3) and confidence (...,) from network outputs for frames (...)."""
        if not self.mixture:
            return outputs[..., None, :], torch.ones(outputs.shape[:-1])
        logits, means, log_stds = outputs
        spread = mixture_variance(logits, means, log_stds).mean(-1).sqrt()
        confidence = torch.exp(-spread / self.inference.confidence_scale)
        if noise is None:
            return mixture_mean(logits, means)[..., None, :], confidence
        num = noise.shape[-2]
        logits = logits.unsqueeze(-2).expand(*logits.shape[:-1], num, logits.shape[-1])
        means = means.unsqueeze(-3).expand(*means.shape[:-2], num, *means.shape[-2:])
        log_stds = log_stds.unsqueeze(-3).expand(*log_stds.shape[:-2], num, *log_stds.shape[-2:])
        noise_t = torch.from_numpy(noise).to(logits)
        return sample_mixture(logits, means, log_stds, noise_t, self.inference.temperature), \
            confidence

    def _frame(self, poses: np.ndarray, confidence: float) -> ListenerFrame:
        frame = ListenerFrame.neutral()
        frame.roll, frame.pitch, frame.yaw = (float(v) for v in poses[0])
        frame.confidence = float(confidence)
        return frame

    @torch.inference_mode()
    def step(self, hop: np.ndarray) -> ListenerFrame:
        """Consume one hop of audio; return the listener frame for it."""
        row = feature_vector(self._extractor.step(self.check_hop(hop)))
        x = torch.from_numpy(row)[None].to(self.device)
        outputs, self._state = self.network.step(x, self._state)
        outputs = tuple(o[0] for o in outputs) if self.mixture else outputs[0]
        noise = self._next_noise() if self.inference.mode == 'sample' else None
        poses, confidence = self._poses(outputs, noise)
        self.last_samples = poses.float().cpu().numpy()
        return self._frame(self.last_samples, float(confidence))

    @torch.inference_mode()
    def predict(self, features: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """
        Return poses ``(T, S, 3)`` and confidence ``(T,)`` for ``(T, F)`` feature rows.

        The batched path of :meth:`run`, also for offline evaluation from cached features;
        ``S`` is ``num_samples`` in 'sample' mode, else 1. Reseeds the sampling noise, as
        :meth:`reset` does, and leaves the stream state unspecified.
        """
        self.reset()
        rows = np.asarray(features, dtype=np.float32)
        x = torch.from_numpy(rows)[None].to(self.device)
        outputs = self.network(x)
        outputs = tuple(o[0] for o in outputs) if self.mixture else outputs[0]
        noise = None
        if self.inference.mode == 'sample':
            noise = np.array([self._next_noise() for _ in range(len(rows))]).reshape(
                len(rows), self.inference.num_samples, NOISE_DIM)
        poses, confidence = self._poses(outputs, noise)
        return poses.float().cpu().numpy(), confidence.float().cpu().numpy()

    def run(self, audio: np.ndarray) -> List[ListenerFrame]:
        """Reset, then return one frame per complete hop through the batched forward pass."""
        batch = extract_features(self.as_audio(audio), self.feature_config)
        poses, confidence = self.predict(feature_matrix(batch))
        return [self._frame(p, c) for p, c in zip(poses, confidence)]


def save_learned_checkpoint(directory: Path | str, model: TorchListenerModel | nn.Module,
                            feature_config: Optional[FeatureConfig] = None,
                            inference: Optional[InferenceConfig] = None) -> Path:
    """
    Save a :class:`TorchListenerModel`, or a bare network with its settings, as a checkpoint.

    For a bare network, ``feature_config`` and ``inference`` default to their defaults; the
    network is not moved or switched to eval mode, so training can save mid-run.
    """
    if isinstance(model, TorchListenerModel):
        network = model.network
        feature_config = feature_config or model.feature_config
        inference = inference or model.inference
    else:
        network = model
    config = {
        'architecture': network.architecture,
        'network': asdict(network.config),
        'features': asdict(feature_config or FeatureConfig()),
        'inference': asdict(inference or InferenceConfig()),
    }
    tensors = {k: v.detach().cpu().numpy() for k, v in network.state_dict().items()}
    return save_checkpoint(directory, network.architecture, config, tensors)


def _settings(config: Mapping, section: str, kind) -> dict:
    values = config.get(section, {})
    if not isinstance(values, Mapping):
        raise ValueError(f'"{section}" must be an object')
    unknown = sorted(set(values) - {f.name for f in fields(kind)})
    if unknown:
        raise ValueError(f'unknown {section} settings {unknown}')
    return dict(values)


def _learned_factory(config: Mapping, tensors: Dict[str, np.ndarray], frame_rate: float,
                     device: str) -> TorchListenerModel:
    """Build a :class:`TorchListenerModel` from a checkpoint; raise ValueError on a mismatch."""
    architecture = config.get('architecture')
    if architecture not in NETWORKS:
        raise ValueError(f'unknown architecture {architecture!r}')
    unknown = sorted(set(config) - {'architecture', 'network', 'features', 'inference'})
    if unknown:
        raise ValueError(f'unknown sections {unknown}')
    features = FeatureConfig(**_settings(config, 'features', FeatureConfig))
    if not math.isclose(features.frame_rate, frame_rate, rel_tol=1e-9):
        raise ValueError(f'the model was trained at {features.frame_rate} frames/s but '
                         f'{frame_rate} frames/s were requested')
    network = build_network(architecture, _settings(config, 'network', NETWORKS[architecture][0]))
    try:
        network.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in tensors.items()})
    except RuntimeError as error:
        raise ValueError(f'weights do not match the network: {error}') from error
    inference = InferenceConfig(**_settings(config, 'inference', InferenceConfig))
    return TorchListenerModel(network, features, inference, device)


for _architecture in NETWORKS:
    register_model_type(_architecture, _learned_factory)
