"""
The tiny facial model the learned-face tests run, trained on the small synthetic REACT corpus.

:func:`train_tiny_face` writes the SMALL synthetic REACT 2025 corpus
(:mod:`listener_head_ros.data.synthetic_react`: 15 dyads with a planted, stochastic listener
that smiles after an utterance ends with probability ``smile_probability``), prepares its
feature cache and trains a tiny ``causal_gru_flow`` on ``facial_attributes`` +
``coefficients`` with the real trainer
(:func:`~listener_head_ros.training.trainer.cross_validation` on the release's fixed split:
trained on ``train``, scored on the held-out ``test`` sessions) in a few seconds on one CPU
thread.  Its checkpoint (``<out>/foldtest/checkpoint``, the point prediction) is what
the learned-face tests and the node's DDS integration test run (and sample from, with
``TorchListenerModel.with_inference`` or the node's ``sampling.*`` parameters).

:func:`smile_masks` picks the frames of the planted smile's plateau after each utterance end
and the frames away from any utterance end, where the trained model's AU12 is compared.
"""

from dataclasses import dataclass
import io
import json
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np
import torch

from listener_head_ros.data.feature_cache import prepare_cache
from listener_head_ros.data.react2025 import (
    Dyad, React2025Config, React2025Source, ReactRelease, scan_release)
from listener_head_ros.data.synthetic_react import generate_corpus, SMALL, TRUTH_FILE
from listener_head_ros.streams import COEFFICIENTS, FACIAL_ATTRIBUTES
from listener_head_ros.training.config import TrainConfig
from listener_head_ros.training.trainer import CHECKPOINT_DIR, cross_validation

TARGETS = (FACIAL_ATTRIBUTES.name, COEFFICIENTS.name)
TINY_FLOW = {'conv_channels': 16, 'hidden_size': 16, 'num_layers': 1, 'flow_width': 32,
             'flow_layers': 1, 'time_dim': 4, 'dropout': 0.0}
STEPS = 150


@dataclass(frozen=True)
class TrainedFace:
    """The synthetic corpus, the trained facial checkpoint and the trainer's results."""

    corpus: Path
    checkpoint: Path  # 'mean' mode: the point prediction
    results: Dict[str, Any]

    def release(self) -> ReactRelease:
        """Return the scanned corpus."""
        return scan_release(self.corpus)

    def utterance_ends(self, dyad: Dyad) -> List[float]:
        """Return the end (s) of each utterance the speaker of ``dyad`` says."""
        truth = json.loads((self.corpus / TRUTH_FILE).read_text(encoding='utf-8'))
        phrases = truth['sessions'][f'{dyad.split}/{dyad.session}']['phrases']
        return [p['end'] for p in phrases if p['final']]


def train_tiny_face(root: Path) -> TrainedFace:
    """Generate the SMALL corpus under ``root``, prepare its cache and train the tiny model."""
    corpus = generate_corpus(root / 'corpus', SMALL)
    prepare_cache(React2025Source(React2025Config(root=corpus)), root / 'cache',
                  progress=False, out=io.StringIO())
    config = TrainConfig(
        cache_dir=str(root / 'cache'), out_dir=str(root / 'run'), model_type='causal_gru_flow',
        model=TINY_FLOW, targets=TARGETS, steps=STEPS, batch_size=4, crop_frames=60,
        burn_in_frames=15, learning_rate=0.01, warmup_steps=10, log_every=50,
        checkpoint_every=STEPS, device='cpu', mixed_precision=False, streaming_eval=False,
        final_model=False)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        results = cross_validation(config)
    finally:
        torch.set_num_threads(threads)
    return TrainedFace(corpus, root / 'run' / 'foldtest' / CHECKPOINT_DIR, results)


def smile_masks(times: np.ndarray, ends: Sequence[float]) -> Tuple[np.ndarray, np.ndarray]:
    """
    Return the masks of ``times`` (s) on a planted smile's plateau and away from every smile.

    The plateau is where SMALL's smile bump, cued by an utterance end, is fully up; away is
    before every end or after every bump has fallen back.
    """
    bump = SMALL.smile
    rise = bump.lag_seconds + bump.rise_seconds
    times = np.asarray(times)
    plateau, near = np.zeros(times.shape, bool), np.zeros(times.shape, bool)
    for end in ends:
        tau = times - end
        plateau |= (tau > rise) & (tau < rise + bump.hold_seconds)
        near |= (tau > 0.0) & (tau < rise + bump.hold_seconds + bump.fall_seconds)
    return plateau, ~near
