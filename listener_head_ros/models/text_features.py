"""
Per-frame text features from live recognition results, causal by construction.

At frame ``t`` the features depend only on the :class:`~listener_head_ros.models.base.
TranscriptEvent` s delivered up to that frame (their ``time`` is when the recogniser published
them, which training simulates with the recogniser's latency: :mod:`listener_head_ros.data.
transcripts`). Each result reveals the words beyond what the previous result of the same
utterance held (an incremental recogniser revises and extends its partial result; a final
result closes the utterance); a word revealed at ``tau`` contributes ``exp(-(t - tau) /
decay)`` to its hash bucket, so the features say which words were just recognised and how long
ago. Eight timing and punctuation columns follow (:data:`TIMING_COLUMNS`).

With a ``transformers`` text encoder (a BERT-family model from a local directory or hub name,
:class:`TransformerTextEncoder`) the hashed words are replaced by the encoder's mean-pooled
embedding of the recent text, recomputed at each result and held until the next: fused with the
audio features frame by frame, as AISLe conditions its listener on the words.
"""

from __future__ import annotations

import collections
from functools import lru_cache
import math
import re
from typing import Deque, List, Optional, Sequence, Tuple
import zlib

import numpy as np
import torch
from torch import nn

from listener_head_ros.models.base import StepContext

TIMING_COLUMNS: Tuple[str, ...] = (
    'result', 'final', 'question', 'exclamation', 'comma', 'period', 'words', 'partial')
"""Columns after the words: decayed time since any result, a final result, each punctuation
mark; the current utterance's word count / 20 (at most 1); 1 while a partial result is open."""
_PUNCTUATION = {'?': 'question', '!': 'exclamation', ',': 'comma', '.': 'period'}
_TOKEN = re.compile(r"[\w']+|[?!.,]")
RECENT_WORDS = 32  # words kept for the hashed columns (older ones have decayed away)
MAX_TEXT_CHARACTERS = 4096  # a longer result is cut to its last characters
_HORIZON = 8.0  # decays: a contribution older than 8 decays (3e-4) is dropped


def tokens(text: str) -> List[str]:
    """Return the lower-cased words and punctuation marks of a recognition result."""
    return _TOKEN.findall(text[-MAX_TEXT_CHARACTERS:].lower())


def word_bucket(word: str, buckets: int) -> int:
    """Return the hash bucket of a word: stable across runs and machines (CRC-32)."""
    return zlib.crc32(word.encode('utf-8')) % buckets


class TransformerTextEncoder:
    """A BERT-family encoder: the mean-pooled last hidden state of the recent text."""

    def __init__(self, name_or_path: str, device: str = 'cpu', local_files_only: bool = False,
                 max_tokens: int = 64) -> None:
        from transformers import AutoConfig, AutoModel, AutoTokenizer
        from transformers.utils import logging

        logging.disable_progress_bar()
        config = AutoConfig.from_pretrained(name_or_path, local_files_only=local_files_only)
        if getattr(config, 'is_decoder', False) or getattr(config, 'is_encoder_decoder', False):
            raise ValueError(f'{name_or_path} ({config.model_type}) is not a text encoder; use '
                             'a BERT-family model')
        self.tokenizer = AutoTokenizer.from_pretrained(
            name_or_path, local_files_only=local_files_only, truncation_side='left')
        self.model: nn.Module = AutoModel.from_pretrained(
            name_or_path, local_files_only=local_files_only, use_safetensors=True).to(device)
        self.model.eval()
        self.device, self.max_tokens = device, int(max_tokens)
        self.dim = int(config.hidden_size)
        self._embed = lru_cache(maxsize=4096)(self._compute)

    @torch.inference_mode()
    def _compute(self, text: str) -> np.ndarray:
        if not text:
            return np.zeros(self.dim, dtype=np.float32)
        batch = self.tokenizer(text, truncation=True, max_length=self.max_tokens,
                               return_tensors='pt').to(self.device)
        hidden = self.model(**batch).last_hidden_state[0]
        mask = batch['attention_mask'][0, :, None].to(hidden.dtype)
        return ((hidden * mask).sum(0) / mask.sum().clamp_min(1.0)).float().cpu().numpy()

    def embed(self, text: str) -> np.ndarray:
        """Return the ``(dim,)`` embedding of ``text`` (zeros for no text; cached)."""
        return self._embed(text)


class TextFeatures:
    """Streaming text features (module docstring): one row per step from its context."""

    def __init__(self, buckets: int = 64, decay: float = 1.0,
                 encoder: Optional[TransformerTextEncoder] = None) -> None:
        if buckets < 1 or not decay > 0.0:
            raise ValueError('text features need buckets >= 1 and a positive decay')
        self.buckets, self.decay, self.encoder = int(buckets), float(decay), encoder
        self.dim = (self.buckets if encoder is None else encoder.dim) + len(TIMING_COLUMNS)
        self.reset()

    def reset(self) -> None:
        """Forget every result, as at the start of a stream."""
        self._words: Deque[Tuple[int, float]] = collections.deque(maxlen=RECENT_WORDS)
        self._current: List[str] = []  # the open utterance's latest result
        self._finals: Deque[str] = collections.deque(maxlen=2)  # text the encoder also sees
        self._times = {name: -math.inf for name in ('result', 'final', *_PUNCTUATION.values())}
        self._word_count, self._partial = 0, False
        self._embedding = None if self.encoder is None else np.zeros(self.encoder.dim,
                                                                     np.float32)

    def _hear(self, time: float, text: str, final: bool) -> None:
        """Take one recognition result published at ``time``."""
        heard = tokens(text)
        common = 0
        while (common < min(len(heard), len(self._current))
               and heard[common] == self._current[common]):
            common += 1
        for token in heard[common:]:
            if token in _PUNCTUATION:
                self._times[_PUNCTUATION[token]] = time
            else:
                self._words.append((word_bucket(token, self.buckets), time))
        self._times['result'] = time
        self._word_count = sum(token not in _PUNCTUATION for token in heard)
        self._partial = not final
        if self.encoder is not None:
            self._embedding = self.encoder.embed(' '.join([*self._finals, ' '.join(heard)]))
        if final:
            self._times['final'] = time
            self._finals.append(' '.join(heard))
            self._current = []
        else:
            self._current = heard

    def step(self, context: StepContext) -> np.ndarray:
        """Take the step's results; return its ``(dim,)`` float32 row at ``context.time``."""
        for event in sorted(context.transcripts, key=lambda e: e.time):
            self._hear(float(event.time), str(event.text), bool(event.final))
        now = float(context.time)
        row = np.zeros(self.dim, dtype=np.float32)
        if self.encoder is None:
            for bucket, time in self._words:
                age = (now - time) / self.decay
                if 0.0 <= age < _HORIZON:
                    row[bucket] += math.exp(-age)
            width = self.buckets
        else:
            row[:self.encoder.dim] = self._embedding
            width = self.encoder.dim
        for k, name in enumerate(TIMING_COLUMNS[:6]):
            age = (now - self._times[name]) / self.decay
            row[width + k] = math.exp(-age) if 0.0 <= age < _HORIZON else 0.0
        row[width + 6] = min(self._word_count, 20) / 20.0
        row[width + 7] = float(self._partial)
        return row

    def rows(self, contexts: Sequence[StepContext]) -> np.ndarray:
        """Reset, then return the ``(T, dim)`` rows of consecutive steps' contexts."""
        self.reset()
        return np.stack([self.step(c) for c in contexts]) if contexts else np.zeros(
            (0, self.dim), dtype=np.float32)
