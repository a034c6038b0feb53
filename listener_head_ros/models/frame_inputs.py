"""
What a learned listener's network reads each frame: acoustic rows, speech-encoder states, text.

:class:`InputConfig` chooses the inputs (it is the ``inputs`` section of a training config and
the ``frame_inputs`` section of a checkpoint's ``config.json``, so the same checkpoint runs in
the node with the encoder directories it names, never a hidden global; a local directory is
recorded as its absolute path). The network's input
row is their concatenation, in this order:

=================  ============================================================================
columns            content
=================  ============================================================================
acoustic           log-mel + prosody, :mod:`~listener_head_ros.models.frame_features` (68)
speech             hidden states of a wav2vec2 / HuBERT / WavLM on a bounded window of past
                   audio, :mod:`~listener_head_ros.models.speech_encoder` (hidden size per layer)
text               hashed recognised words or a text encoder's embedding, plus timing columns,
                   :mod:`~listener_head_ros.models.text_features`
=================  ============================================================================

:class:`FrameInputs` computes the rows: :meth:`~FrameInputs.step` one hop and its context at a
time (the node), :meth:`~FrameInputs.matrix` a whole signal (offline runs), equal to stepping.
Training reads the acoustic and speech columns from the feature cache
(:mod:`listener_head_ros.data.feature_cache`) and computes the text columns from the cached
transcripts with the same :class:`~listener_head_ros.models.text_features.TextFeatures`.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace
import math
from pathlib import Path
from typing import Dict, FrozenSet, List, Optional, Sequence, Tuple

import numpy as np

from listener_head_ros.features import (
    extract_features, FeatureConfig, StreamingFeatureExtractor)
from listener_head_ros.models.base import AUDIO, StepContext, TRANSCRIPT
from listener_head_ros.models.frame_features import feature_dim, feature_matrix, feature_vector
from listener_head_ros.models.speech_encoder import load_speech_model, WindowedSpeechEncoder
from listener_head_ros.models.text_features import (
    TextFeatures, TIMING_COLUMNS, TransformerTextEncoder)
from listener_head_ros.schema import setting

LEXICAL = 'lexical'
"""``InputConfig.text`` for word and punctuation features of the text alone (no encoder)."""
ACOUSTIC, SPEECH, TEXT = 'acoustic', 'speech', 'text'
"""Names of the column blocks of an input row, in order."""
MAX_WINDOW_SECONDS = 30.0
SPEECH_MIXES = ('concat', 'weighted')


@dataclass(frozen=True)
class InputConfig:
    """The per-frame inputs of a learned model, each declared with its description."""

    acoustic: bool = setting(True, 'Log-mel and prosody columns (68 for 64 mel bands).')
    speech_encoder: str = setting(
        '', "A wav2vec2, HuBERT or WavLM directory (or hub name) whose hidden states are "
        "inputs; '' for none.")
    speech_layers: Tuple[float, ...] = setting(
        (), 'Hidden states of the speech encoder to use, 0 = its input embedding, -1 = the '
        'last layer; several are concatenated. Empty: the last layer.')
    speech_mix: str = setting(
        'concat', "How several speech_layers are combined: 'concat' (side by side) or "
        "'weighted' (a learned weighted sum, its weights trained with the network).")
    speech_window: float = setting(2.0, 'Seconds of past audio the speech encoder sees.',
                                   (0.05, MAX_WINDOW_SECONDS))
    speech_every: int = setting(3, 'Frames between speech-encoder runs (the newest state is '
                                   'held in between).', (1, 300))
    speech_normalize: bool = setting(True, 'Standardise each encoder window (the processors '
                                           "do it per utterance, which is not causal).")
    speech_dim: int = setting(0, 'Hidden size of the speech encoder (recorded by training, '
                                 'checked on loading; 0: unknown yet).', (0, 65536))
    text: str = setting(
        '', "'' no text; 'lexical' hashed words and punctuation of the recognised text; or a "
        'BERT-family text encoder directory (or hub name).')
    text_buckets: int = setting(64, 'Hash buckets of the lexical word features.', (1, 4096))
    text_decay: float = setting(1.0, 'Seconds over which a recognised word fades from the '
                                     'features.', (0.01, 60.0))
    text_dim: int = setting(0, 'Hidden size of the text encoder (recorded by training, checked '
                               'on loading; 0: unknown yet).', (0, 65536))

    def __post_init__(self) -> None:
        layers = tuple(self.speech_layers)
        if not all(float(v).is_integer() for v in layers):
            raise ValueError(f'speech_layers must be whole numbers, not {list(layers)}')
        object.__setattr__(self, 'speech_layers', tuple(int(v) for v in layers))
        if self.speech_mix not in SPEECH_MIXES:
            raise ValueError(f'speech_mix must be one of {SPEECH_MIXES}, not '
                             f'{self.speech_mix!r}')
        if self.speech_mix == 'weighted' and len(self.layers) < 2:
            raise ValueError("speech_mix 'weighted' needs two or more speech_layers")
        if not (self.acoustic or self.speech_encoder):
            raise ValueError('a model needs an audio input: acoustic features or a speech '
                             'encoder')
        if not math.isfinite(self.speech_window) or not math.isfinite(self.text_decay):
            raise ValueError('speech_window and text_decay must be finite')

    @property
    def layers(self) -> Tuple[int, ...]:
        """Return the speech encoder's hidden states used: the last one by default."""
        return self.speech_layers or (-1,)

    @property
    def needs(self) -> FrozenSet[str]:
        """Return the model inputs (:data:`~listener_head_ros.models.base.INPUTS`) it reads."""
        return frozenset({AUDIO} | ({TRANSCRIPT} if self.text else set()))

    def widths(self, features: FeatureConfig) -> Dict[str, int]:
        """Return the columns of each block in row order; raise ValueError if one is unknown."""
        widths = {}
        if self.acoustic:
            widths[ACOUSTIC] = feature_dim(features.n_mels)
        if self.speech_encoder:
            if not self.speech_dim:
                raise ValueError('speech_dim is unknown: load the encoder (FrameInputs) first')
            widths[SPEECH] = self.speech_dim * len(self.layers)
        if self.text:
            words = self.text_buckets if self.text == LEXICAL else self.text_dim
            if not words:
                raise ValueError('text_dim is unknown: load the text encoder (FrameInputs) '
                                 'first')
            widths[TEXT] = words + len(TIMING_COLUMNS)
        return widths

    def dim(self, features: FeatureConfig) -> int:
        """Return the width of an input row."""
        return sum(self.widths(features).values())

    def layer_mix(self, features: FeatureConfig) -> Tuple[int, ...]:
        """Return the network's ``layer_mix`` setting (first column, layers, width) or ()."""
        if self.speech_mix != 'weighted':
            return ()
        widths = self.widths(features)
        return (widths.get(ACOUSTIC, 0), len(self.layers), self.speech_dim)


class FrameInputs:
    """The input rows of one stream: the chosen features of each hop and its context."""

    def __init__(self, config: InputConfig, features: FeatureConfig, device: str = 'cpu',
                 local_files_only: bool = False) -> None:
        self.features = features
        config = replace(config, speech_encoder=_local(config.speech_encoder),
                         text=config.text if config.text == LEXICAL else _local(config.text))
        self.speech: Optional[WindowedSpeechEncoder] = None
        if config.speech_encoder:
            model = load_speech_model(config.speech_encoder, device, local_files_only)
            self.speech = WindowedSpeechEncoder(
                model, config.layers, int(round(config.speech_window * features.sample_rate)),
                config.speech_every, features.hop_length, features.sample_rate,
                config.speech_normalize)
            config = _recorded(config, 'speech_dim', self.speech.width)
        self.text: Optional[TextFeatures] = None
        if config.text:
            encoder = None if config.text == LEXICAL else TransformerTextEncoder(
                config.text, device, local_files_only)
            self.text = TextFeatures(config.text_buckets, config.text_decay, encoder)
            if encoder is not None:
                config = _recorded(config, 'text_dim', encoder.dim)
        self.config = config
        self.dim = config.dim(features)
        self._acoustic = StreamingFeatureExtractor(features) if config.acoustic else None

    def columns(self, block: str) -> slice:
        """Return the columns of ``block`` (:data:`ACOUSTIC`, ...) in a row; empty if absent."""
        start = 0
        for name, width in self.config.widths(self.features).items():
            if name == block:
                return slice(start, start + width)
            start += width
        return slice(start, start)

    def reset(self) -> None:
        """Forget every stream state, as at the start of a stream."""
        for part in (self._acoustic, self.speech, self.text):
            if part is not None:
                part.reset()

    def clone(self) -> 'FrameInputs':
        """Return fresh stream state over the same loaded encoders (no second load)."""
        other = copy.copy(self)
        if self._acoustic is not None:
            other._acoustic = StreamingFeatureExtractor(self.features)
        for name in ('speech', 'text'):  # their reset() makes new state, never shared
            part = getattr(self, name)
            setattr(other, name, None if part is None else copy.copy(part))
        other.reset()
        return other

    def step(self, hop: np.ndarray, context: StepContext) -> np.ndarray:
        """Return the ``(dim,)`` float32 row of one hop of audio and its context."""
        parts = []
        if self._acoustic is not None:
            parts.append(feature_vector(self._acoustic.step(hop)))
        if self.speech is not None:
            parts.append(self.speech.step(hop))
        if self.text is not None:
            parts.append(self.text.step(context))
        return np.concatenate(parts).astype(np.float32, copy=False)

    def matrix(self, audio: Optional[np.ndarray], contexts: Sequence[StepContext],
               cached: Optional[Dict[str, np.ndarray]] = None) -> np.ndarray:
        """
        Return the ``(T, dim)`` rows of a whole signal, ``T = len(contexts)``, as stepping would.

        ``cached`` may hold blocks computed before (the feature cache's ``acoustic`` and
        ``speech`` columns): those are used instead of computing them again, and ``audio`` may
        then be None.
        """
        cached = cached or {}
        missing = [name for name, part in ((ACOUSTIC, self._acoustic), (SPEECH, self.speech))
                   if part is not None and name not in cached]
        if missing and audio is None:
            raise ValueError(f'no audio to compute the {", ".join(missing)} block(s) from')
        n = len(contexts)
        parts: List[np.ndarray] = []
        if self._acoustic is not None:
            parts.append(cached[ACOUSTIC] if ACOUSTIC in cached else feature_matrix(
                extract_features(audio, self.features))[:n])
        if self.speech is not None:
            parts.append(cached[SPEECH] if SPEECH in cached else self.speech.encode(audio, n))
        if self.text is not None:
            parts.append(self.text.rows(contexts))
        if any(len(p) != n for p in parts):
            raise ValueError(f'input blocks of {[len(p) for p in parts]} rows for {n} frames')
        return np.concatenate(parts, axis=1).astype(np.float32, copy=False)


def _local(name_or_path: str) -> str:
    """Return an existing local directory as its absolute path (what a checkpoint records)."""
    path = Path(name_or_path)
    return str(path.resolve()) if name_or_path and path.is_dir() else name_or_path


def _recorded(config: InputConfig, name: str, value: int) -> InputConfig:
    """Return ``config`` with an encoder's size recorded; refuse one that differs."""
    recorded = getattr(config, name)
    if recorded and recorded != value:
        raise ValueError(f'the checkpoint was trained with {name} {recorded}, the encoder it '
                         f'names has {value}: it is another model')
    return replace(config, **{name: value})
