"""
Learned listener models behind the streaming interface, and their checkpoints.

:class:`TorchListenerModel` chains the causal feature extractor, the feature rows of
:mod:`~listener_head_ros.models.frame_features` and a network from
:mod:`~listener_head_ros.models.networks`. :meth:`~TorchListenerModel.step` feeds the network
one frame at a time from its stream state; :meth:`~TorchListenerModel.run` extracts the
features in one batch and runs the batched forward pass; both give the same frames.

The network predicts the concatenated columns of its ``targets``, named streams of
:mod:`listener_head_ros.streams` (``head`` by default; ``facial_attributes`` and
``coefficients`` too). Every network is decoded through the same contract (``predictive``,
``draw``, ``noise_dim``; see :mod:`~listener_head_ros.models.networks`), never by its class.
With a generative network, ``mode='sample'`` draws ``num_samples`` reactions per frame (the
frame's streams hold the first, :attr:`ListenerFrame.samples` all of them) from a numpy
generator seeded at every :meth:`~TorchListenerModel.reset`, with optional AR(1) correlation of
the noise across frames so that sampled paths are smooth. ``mode='mean'`` outputs the
predictive mean. Confidence is ``exp(-rms predictive std of the head / confidence_scale)`` (the
head stream's columns, else the coefficients' rotation, both in radians), and 1 for
deterministic networks. Predicted facial attributes also drive the frame's action units,
valence, arousal and expression; predicted coefficients the blendshapes and, without a head
stream, the head.

Checkpoints (:func:`save_learned_checkpoint`) hold the network weights and normalisation
buffers in ``model.safetensors`` and, in ``config.json``, the architecture, the network,
feature and inference settings, the target streams and the inputs the network needs;
:func:`listener_head_ros.models.checkpoint.load_checkpoint` builds them with
:func:`load_learned_model`.
"""

from __future__ import annotations

import math
import threading
import warnings
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn
from torch.nn.modules.module import (
    register_module_buffer_registration_hook, register_module_parameter_registration_hook)

from listener_head_ros.audio.stream_input import FORMAT_BOUNDS
from listener_head_ros.face import faceverse_blendshapes, react_attributes_to_face
from listener_head_ros.features import FeatureConfig
from listener_head_ros.models.base import (
    EMPTY_CONTEXT, ListenerFrame, SideInputs, StepContext, StreamingListenerModel)
from listener_head_ros.models.checkpoint import read_settings, save_checkpoint
from listener_head_ros.models.device import resolve_device
from listener_head_ros.models.frame_inputs import FrameInputs, InputConfig
from listener_head_ros.models.registry import build_network, network_type
from listener_head_ros.roles import LISTENING
from listener_head_ros.sampling import MAX_SAMPLES
from listener_head_ros.streams import (
    BLENDSHAPES, COEFFICIENTS, EXPRESSION_COLUMNS, FACEVERSE_FRONTAL_ROTATION, FACIAL_ATTRIBUTES,
    faceverse_rotation_to_head, HEAD, PREDICTED, ROTATION_COLUMNS, RULE, stream_slices,
    total_dim)

MODES = ('mean', 'sample')
DEFAULT_TARGETS = (HEAD.name,)
MAX_MEL_FILTERBANK = 1 << 22  # float64 values: 32 MiB; the default analysis has 513 x 64
UNSAVED_BUFFERS = 8  # buffers a network may register beyond twice its saved tensors


@dataclass(frozen=True)
class InferenceConfig:
    """How a learned model turns network outputs into frames."""

    mode: str = 'mean'  # 'mean': the point prediction; 'sample': draw from the distribution
    num_samples: int = 1  # reactions drawn per frame in 'sample' mode
    temperature: float = 1.0
    seed: int = 0
    noise_correlation: float = 0.0  # AR(1) coefficient of the sampling noise between frames
    confidence_scale: float = 0.1  # rad
    # FaceVerse rotation (rot_x, rot_y, rot_z) of the listener's neutral head: the head from
    # predicted coefficients is relative to it. Frontal by default; training records the
    # training listeners' circular-mean rotation (trainer.inference_settings).
    neutral_rotation: Tuple[float, float, float] = FACEVERSE_FRONTAL_ROTATION
    # The per-column standardisation of the targets the network learned (training's
    # standardise_targets): outputs are ``value * target_std + target_mean``; empty: the
    # network's outputs are the targets' own units.
    target_mean: Tuple[float, ...] = ()
    target_std: Tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f'mode must be one of {MODES}, not {self.mode!r}')
        if not 1 <= self.num_samples <= MAX_SAMPLES:
            raise ValueError(f'num_samples must be in 1..{MAX_SAMPLES}, not {self.num_samples}')
        if not 0.0 < self.temperature <= 10.0 or not self.confidence_scale > 0:
            raise ValueError('need 0 < temperature <= 10 and confidence_scale > 0')
        if not 0.0 <= self.noise_correlation < 1.0:
            raise ValueError('noise_correlation must be in [0, 1)')
        if len(self.neutral_rotation) != 3 or not all(
                math.isfinite(v) for v in self.neutral_rotation):
            raise ValueError('neutral_rotation needs 3 finite angles (rot_x, rot_y, rot_z), rad')
        if len(self.target_mean) != len(self.target_std) or not all(
                math.isfinite(m) and math.isfinite(s) and s > 0.0
                for m, s in zip(self.target_mean, self.target_std)):
            raise ValueError('target_mean and target_std need one finite mean and one positive '
                             'std per target column (or none)')


@dataclass(frozen=True)
class Prediction:
    """The batched output of a learned model: each predicted stream, with its samples."""

    streams: Dict[str, np.ndarray]  # stream name -> (T, S, dim)
    confidence: np.ndarray  # (T,)


class TorchListenerModel(StreamingListenerModel):
    """A torch network behind :class:`StreamingListenerModel`, on the CPU or a GPU."""

    def __init__(self, network: nn.Module, feature_config: Optional[FeatureConfig] = None,
                 inference: Optional[InferenceConfig] = None, device: str = 'cpu',
                 targets: Sequence[str] = DEFAULT_TARGETS,
                 inputs: InputConfig | FrameInputs | None = None) -> None:
        self.feature_config = feature_config if feature_config is not None else FeatureConfig()
        self.inference = inference if inference is not None else InferenceConfig()
        self.sample_rate = self.feature_config.sample_rate
        self.name = network.architecture
        self.targets = tuple(targets)
        self._slices = stream_slices(self.targets)
        self.device, warning = resolve_device(device)
        self.warnings: List[str] = [warning] if warning else []
        self.frame_inputs = (inputs.clone() if isinstance(inputs, FrameInputs) else FrameInputs(
            inputs or InputConfig(), self.feature_config, self.device))
        self.inputs = frozenset(network.inputs) | self.frame_inputs.config.needs
        coefficients = COEFFICIENTS.name in self.targets
        self.outputs = {BLENDSHAPES.name: PREDICTED if coefficients else RULE,
                        HEAD.name: PREDICTED if coefficients else RULE,
                        **{name: PREDICTED for name in self.targets}}
        self._reaction = 0
        if self.inference.mode == 'sample' and not network.noise_dim:
            raise ValueError(f"mode 'sample' needs a generative network; {self.name} is "
                             'deterministic')
        expected = self.frame_inputs.dim
        columns = total_dim(self.targets)
        if network.config.input_dim != expected or network.config.output_dim != columns:
            widths = self.frame_inputs.config.widths(self.feature_config)
            raise ValueError(f'the network must map {expected} input columns ('
                             f'{", ".join(f"{k} {v}" for k, v in widths.items())}) to {columns} '
                             f'target columns ({", ".join(self.targets)}), not '
                             f'{network.config.input_dim} to {network.config.output_dim}')
        for text in self.warnings:
            warnings.warn(text, RuntimeWarning, stacklevel=2)
        self.network = network.to(self.device).eval()
        self._confidence_columns = _head_columns(self._slices, columns)
        self._scale: Optional[Tuple[torch.Tensor, torch.Tensor]] = None
        if self.inference.target_mean:
            if len(self.inference.target_mean) != columns:
                raise ValueError(f'the inference settings standardise '
                                 f'{len(self.inference.target_mean)} columns, the targets have '
                                 f'{columns}')
            self._scale = (torch.tensor(self.inference.target_mean, device=self.device),
                           torch.tensor(self.inference.target_std, device=self.device))
        self.reset()

    @property
    def hop_length(self) -> int:
        """Return the number of samples consumed per frame."""
        return self.feature_config.hop_length

    @property
    def num_samples(self) -> int:
        """Return the samples per frame: ``num_samples`` in 'sample' mode, else 1."""
        return self.inference.num_samples if self.inference.mode == 'sample' else 1

    def with_inference(self, **changes: Any) -> 'TorchListenerModel':
        """Return the same network run with some :class:`InferenceConfig` fields changed."""
        return TorchListenerModel(self.network, self.feature_config,
                                  replace(self.inference, **changes), self.device, self.targets,
                                  self.frame_inputs)

    @property
    def reaction(self) -> int:
        """Return the sample index whose path drives the frame's head and face."""
        return self._reaction

    def select_reaction(self, index: int) -> None:
        """
        Let sample ``index`` drive the head and face from the next frame on.

        A choice, not streaming state: :meth:`reset` keeps it. Raises ValueError outside
        ``0..num_samples - 1``.
        """
        if not 0 <= int(index) < self.num_samples:
            raise ValueError(f'reaction {index} is not one of the {self.num_samples} samples')
        self._reaction = int(index)

    def reset(self) -> None:
        """Forget the audio and network history and reseed the sampling noise."""
        self.frame_inputs.reset()
        self._state = self.network.init_state(1, torch.device(self.device))
        self._rng = np.random.default_rng(self.inference.seed)
        self._noise: Optional[np.ndarray] = None

    def _next_noise(self, frames: int = 1) -> np.ndarray:
        """Return the ``(frames, num_samples, noise_dim)`` normal noise of the next frames."""
        noise = self._rng.standard_normal(
            (frames, self.inference.num_samples, self.network.noise_dim))
        rho = self.inference.noise_correlation
        if self._noise is None:  # the first frame's noise is fresh
            noise[1:] *= math.sqrt(1.0 - rho * rho)
        else:
            noise *= math.sqrt(1.0 - rho * rho)
            noise[0] += rho * self._noise
        for t in range(1, frames):
            noise[t] += rho * noise[t - 1]
        self._noise = noise[-1].copy()
        return noise

    def _decode(self, outputs: Any, noise: Optional[np.ndarray]
                ) -> Tuple[torch.Tensor, torch.Tensor]:
        """
        Return values (..., S, D) and confidence (...,) from network outputs for frames.

        When sampling, a network's optional ``predictive_std(outputs)`` gives the standard
        deviation without the point prediction, which costs a flow network a whole sample.
        """
        spread_only = getattr(self.network, 'predictive_std', None)
        if noise is not None and spread_only is not None:
            std = spread_only(outputs)
            values = self.network.draw(outputs, torch.from_numpy(noise).to(std),
                                       self.inference.temperature)
        else:
            mean, std = self.network.predictive(outputs)
            values = mean[..., None, :] if noise is None else self.network.draw(
                outputs, torch.from_numpy(noise).to(mean), self.inference.temperature)
        if self._scale is not None:
            values = values * self._scale[1].to(values) + self._scale[0].to(values)
            std = None if std is None else std * self._scale[1].to(std)
        if std is None:
            confidence = torch.ones(values.shape[:-2])
        else:
            spread = std[..., self._confidence_columns].pow(2).mean(-1).sqrt()
            confidence = torch.exp(-spread / self.inference.confidence_scale)
        return values, confidence

    def _frame(self, values: np.ndarray, confidence: float) -> ListenerFrame:
        """Return the frame of one step's values (S, D): sample :attr:`reaction` drives it."""
        frame = ListenerFrame.neutral()
        frame.samples = {name: values[:, cols] for name, cols in self._slices.items()}
        k = self._reaction
        if COEFFICIENTS.name in self._slices:
            frame.coefficients = coefficients = frame.samples[COEFFICIENTS.name][k]
            frame.blendshapes = faceverse_blendshapes(coefficients[EXPRESSION_COLUMNS])
            rotation = coefficients[ROTATION_COLUMNS]
            if np.all(np.isfinite(rotation)):
                frame.roll, frame.pitch, frame.yaw = (float(v) for v in faceverse_rotation_to_head(
                    rotation, self.inference.neutral_rotation))
            else:  # the engine counts the non-finite frame and never publishes it
                frame.roll = frame.pitch = frame.yaw = math.nan
        if HEAD.name in self._slices:
            frame.roll, frame.pitch, frame.yaw = (float(v) for v in frame.samples[HEAD.name][k])
        if FACIAL_ATTRIBUTES.name in self._slices:
            attributes = frame.samples[FACIAL_ATTRIBUTES.name][k]
            frame.facial_attributes = attributes
            (frame.action_units, frame.valence, frame.arousal,
             frame.expression) = react_attributes_to_face(attributes)
        frame.confidence = float(confidence)
        return frame

    @torch.inference_mode()
    def step(self, hop: np.ndarray, context: StepContext = EMPTY_CONTEXT) -> ListenerFrame:
        """Consume one hop of audio; return the listener frame for it."""
        row = self.frame_inputs.step(self.check_hop(hop), context)
        x = torch.from_numpy(row)[None].to(self.device)
        outputs, self._state = self.network.step(x, self._state)
        outputs = _first(outputs)
        noise = self._next_noise()[0] if self.inference.mode == 'sample' else None
        values, confidence = self._decode(outputs, noise)
        return self._frame(values.float().cpu().numpy(), float(confidence))

    @torch.inference_mode()
    def predict(self, features: np.ndarray) -> Prediction:
        """
        Return every predicted stream ``(T, S, dim)`` and confidence ``(T,)`` for feature rows.

        The batched path of :meth:`run`, also for training and evaluation from cached input rows
        (:meth:`~listener_head_ros.models.frame_inputs.FrameInputs.matrix`);
        ``S`` is ``num_samples`` in 'sample' mode, else 1. Reseeds the sampling noise, as
        :meth:`reset` does, and leaves the stream state unspecified.
        """
        self.reset()
        rows = np.asarray(features, dtype=np.float32)
        x = torch.from_numpy(rows)[None].to(self.device)
        outputs = _first(self.network(x))
        noise = self._next_noise(len(rows)) if self.inference.mode == 'sample' else None
        values, confidence = self._decode(outputs, noise)
        values = values.float().cpu().numpy()
        return Prediction({name: values[..., cols] for name, cols in self._slices.items()},
                          confidence.float().cpu().numpy())

    def run(self, audio: np.ndarray, side: Optional[SideInputs] = None) -> List[ListenerFrame]:
        """Reset, then return one frame per complete hop through the batched forward pass."""
        samples = self.as_audio(audio)
        contexts = self.contexts(samples.size // self.hop_length, side)
        prediction = self.predict(self.frame_inputs.matrix(samples, contexts))
        values = np.concatenate([prediction.streams[name] for name in self.targets], axis=-1)
        return [self._frame(v, c) for v, c in zip(values, prediction.confidence)]


def _head_columns(slices: Mapping[str, slice], columns: int) -> slice:
    """Return the output columns confidence is judged on: the head's, in radians."""
    if HEAD.name in slices:
        return slices[HEAD.name]
    if COEFFICIENTS.name in slices:
        start = slices[COEFFICIENTS.name].start
        return slice(start + ROTATION_COLUMNS.start, start + ROTATION_COLUMNS.stop)
    return slice(0, columns)


def _first(outputs: Any) -> Any:
    """Return the outputs of batch element 0 (a tensor or a tuple of tensors)."""
    return tuple(o[0] for o in outputs) if isinstance(outputs, tuple) else outputs[0]


def save_learned_checkpoint(directory: Path | str, model: TorchListenerModel | nn.Module,
                            feature_config: Optional[FeatureConfig] = None,
                            inference: Optional[InferenceConfig] = None,
                            targets: Optional[Sequence[str]] = None,
                            role: str = LISTENING, inputs: Optional[InputConfig] = None) -> Path:
    """
    Save a :class:`TorchListenerModel`, or a bare network with its settings, as a checkpoint.

    ``role`` (:mod:`listener_head_ros.roles`) says whether it listens or moves with its own
    speech: the node runs it only as the ``model`` or the ``speaking_model`` it was made for.

    For a bare network, ``feature_config``, ``inference``, ``targets`` and ``inputs`` (the
    frame inputs, with the encoders' recorded sizes) default to their defaults; the network is
    not moved or switched to eval mode, so training can save mid-run.
    The config records the inputs the network needs, so a node can refuse it up front.
    """
    if isinstance(model, TorchListenerModel):
        network = model.network
        feature_config = feature_config or model.feature_config
        inference = inference or model.inference
        targets = targets or model.targets
        inputs = inputs or model.frame_inputs.config
    else:
        network = model
    config = {
        'architecture': network.architecture,
        'network': asdict(network.config),
        'features': asdict(feature_config or FeatureConfig()),
        'inference': asdict(inference or InferenceConfig()),
        'targets': list(targets or DEFAULT_TARGETS),
        'frame_inputs': asdict(inputs or InputConfig()),
        'inputs': sorted(set(network.inputs) | (inputs or InputConfig()).needs),
    }
    tensors = {k: v.detach().cpu().numpy() for k, v in network.state_dict().items()}
    return save_checkpoint(directory, network.architecture, config, tensors, role)


def _check_features(features: FeatureConfig) -> None:
    """
    Raise ValueError unless the feature analysis of ``features`` is one a listener can run.

    The model's sample rate must be one the audio input accepts, its analysis window at most
    one second, and its mel filterbank (the analysis's largest array) at most
    :data:`MAX_MEL_FILTERBANK` values; so a small ``config.json`` cannot make the analysis
    allocate gigabytes.
    """
    low, high = FORMAT_BOUNDS.sample_rate
    if not low <= features.sample_rate <= high:
        raise ValueError(f'features sample_rate {features.sample_rate} Hz is outside the '
                         f'{low}..{high} Hz the audio input accepts')
    if not 1 <= features.n_fft <= features.sample_rate:
        raise ValueError(f'features n_fft {features.n_fft} must be in 1..sample_rate '
                         f'({features.sample_rate}): an analysis window of at most one second')
    filterbank = (features.n_fft // 2 + 1) * features.n_mels
    if not 0 < filterbank <= MAX_MEL_FILTERBANK:
        raise ValueError(f'features n_mels {features.n_mels} x {features.n_fft // 2 + 1} FFT '
                         f'bins must make 1..{MAX_MEL_FILTERBANK} mel filterbank values')


class _TensorBudget:
    """Refuse, while active in this thread, to register more than ``limit`` module tensors."""

    def __init__(self, limit: int) -> None:
        self.limit, self.count = limit, 0
        self._thread = threading.get_ident()
        self._handles: List[Any] = []

    def _count(self, module: nn.Module, name: str, tensor: Any) -> None:
        if threading.get_ident() != self._thread:
            return
        self.count += 1
        if self.count > self.limit:
            raise ValueError(f'the network config implies more than {self.limit} tensors, '
                             'more than the weights could fill')

    def __enter__(self) -> '_TensorBudget':
        self._handles = [register_module_parameter_registration_hook(self._count),
                         register_module_buffer_registration_hook(self._count)]
        return self

    def __exit__(self, *exc_info: Any) -> None:
        for handle in self._handles:
            handle.remove()


def _first_line(error: BaseException) -> str:
    """Return the first line of an error's message (torch appends C++ traces), or its type."""
    return (str(error).splitlines() or [type(error).__name__])[0]


def _check_network(architecture: str, settings: Mapping, tensors: Dict[str, np.ndarray]) -> None:
    """
    Raise ValueError unless the config describes a network the weights fill exactly.

    The network is first built on torch's ``meta`` device, which allocates nothing, and may
    register at most twice as many tensors as the file holds (plus a few unsaved buffers), so
    a small ``config.json`` that asks for a huge or very deep network is refused before any
    memory or time is taken. Its saved tensors must have exactly the file's names and shapes,
    and what it holds beyond them (unsaved buffers and the stream state) must not outnumber
    the weights.
    """
    budget = 2 * len(tensors) + UNSAVED_BUFFERS
    try:
        with torch.device('meta'), _TensorBudget(budget):
            probe = build_network(architecture, settings)
            state = probe.init_state(1, torch.device('meta'))
    except (OverflowError, RuntimeError, TypeError) as error:  # sizes torch cannot represent
        raise ValueError(f'cannot build the network the config describes: '
                         f'{_first_line(error)}') from None
    saved = probe.state_dict()
    expected = {name: tuple(value.shape) for name, value in saved.items()}
    found = {name: tuple(np.shape(value)) for name, value in tensors.items()}
    missing, unexpected = sorted(set(expected) - set(found)), sorted(set(found) - set(expected))
    wrong = sorted(n for n in set(expected) & set(found) if expected[n] != found[n])
    if missing or unexpected or wrong:
        details = [f'missing {missing[:3]}' if missing else '',
                   f'unexpected {unexpected[:3]}' if unexpected else '',
                   '; '.join(f'{n} is {found[n]}, the config implies {expected[n]}'
                             for n in wrong[:3])]
        raise ValueError('weights do not match the network config: '
                         + '; '.join(d for d in details if d))
    weights = sum(value.numel() for value in saved.values())
    held = (sum(b.numel() for n, b in probe.named_buffers() if n not in saved)
            + sum(s.numel() for s in state))
    if held > weights:
        raise ValueError(f'the network config implies {held} values of unsaved buffers and '
                         f'stream state, more than its {weights} weights')


def load_learned_model(config: Mapping, tensors: Dict[str, np.ndarray], frame_rate: float,
                       device: str) -> TorchListenerModel:
    """
    Build a :class:`TorchListenerModel` from a checkpoint; raise ValueError if it is unfit.

    Every section is read strictly (:func:`~listener_head_ros.models.checkpoint.read_settings`)
    and checked for what it would cost (:func:`_check_features`, :func:`_check_network`) before
    anything is built; the model then steps once, so a model that is returned works.
    """
    architecture = config.get('architecture')
    if not isinstance(architecture, str):
        raise ValueError(f'"architecture" must be a string, not {type(architecture).__name__}')
    kind = network_type(architecture)
    unknown = sorted(set(config) - {'architecture', 'network', 'features', 'inference',
                                    'targets', 'frame_inputs', 'inputs'})
    if unknown:
        raise ValueError(f'unknown sections {unknown}')
    features = read_settings(config.get('features', {}), FeatureConfig, 'features')
    if not math.isclose(features.frame_rate, frame_rate, rel_tol=1e-9):
        raise ValueError(f'the model was trained at {features.frame_rate} frames/s but '
                         f'{frame_rate} frames/s were requested')
    _check_features(features)
    targets = config.get('targets', list(DEFAULT_TARGETS))
    if not isinstance(targets, list) or not targets or not all(
            isinstance(name, str) for name in targets):
        raise ValueError('"targets" must be a non-empty list of stream names')
    inference = read_settings(config.get('inference', {}), InferenceConfig, 'inference')
    inputs = read_settings(config.get('frame_inputs', {}), InputConfig, 'frame_inputs')
    settings = asdict(read_settings(config.get('network', {}), kind.config_type, 'network'))
    _check_network(architecture, settings, tensors)
    network = build_network(architecture, settings)
    try:
        network.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in tensors.items()})
    except RuntimeError as error:
        raise ValueError(f'weights do not match the network: {error}') from error
    try:
        frame_inputs = FrameInputs(inputs, features, resolve_device(device)[0])
    except (OSError, ValueError) as error:
        raise ValueError(f'cannot load the frame inputs the checkpoint names: '
                         f'{_first_line(error)}') from error
    model = TorchListenerModel(network, features, inference, device, targets, frame_inputs)
    try:
        model.step(np.zeros(model.hop_length, dtype=np.float32))
    except (ArithmeticError, RuntimeError, TypeError, ValueError) as error:
        raise ValueError(f'the model fails its first step: {_first_line(error)}') from error
    model.reset()
    speech = model.frame_inputs.speech
    if speech is not None and not model.device.startswith('cuda'):
        seconds = speech.run_seconds()
        share = speech.real_time_share(seconds)
        model.warnings.append(
            f'speech encoder {inputs.speech_encoder} runs on the CPU: {1e3 * seconds:.1f} ms per '
            f'{inputs.speech_window:g} s window every {inputs.speech_every} frames, {share:.0%} '
            'of real time for the encoder alone' + (
                '; frames will be dropped (counted in diagnostics): use a GPU, a smaller '
                'encoder or a larger speech_every' if share > 1.0 else ''))
    return model
