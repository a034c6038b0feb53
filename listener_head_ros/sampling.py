"""
How the node runs a learned generative model: the point prediction, or sampled reactions.

A checkpoint records the inference settings it was saved with (``config.json``,
``inference``: a trained model predicts its point prediction unless told otherwise).  The
node's ``sampling`` parameters replace them when ``sampling.mode`` is set: ``'sample'`` draws
``num_samples`` reactions per frame at ``temperature``, with sampling noise correlated across
frames by ``noise_correlation`` (AR(1)), so that each sample is one coherent reaction; the
robot follows one of them (``reaction_redraw``).  ``training/run_react_synthetic.py`` shows
how a temperature and a noise correlation are chosen on a validation split.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict

from listener_head_ros.schema import setting

MAX_SAMPLES = 64  # reactions drawn per frame at most: each costs a draw per frame and stream
SAMPLING_MODES = ('', 'mean', 'sample')


@dataclass(frozen=True)
class SamplingSettings:
    """The node's override of a learned checkpoint's inference settings."""

    mode: str = setting(
        '', "'' runs a learned checkpoint as saved; 'mean' its point prediction; 'sample' "
        'draws num_samples reactions per frame (a generative network only).')
    num_samples: int = setting(4, "Reactions drawn per frame in 'sample' mode.",
                               (1, MAX_SAMPLES))
    temperature: float = setting(1.0, "Sampling temperature in 'sample' mode.", (0.01, 10.0))
    noise_correlation: float = setting(
        0.97, "AR(1) correlation of the sampling noise between frames in 'sample' mode: near 1 "
        'keeps each sample one slowly varying reaction.', (0.0, 0.999))
    seed: int = setting(0, 'Seed of the sampling noise, reseeded at each reset.',
                        (0, 2 ** 31 - 1))

    def __post_init__(self) -> None:
        if self.mode not in SAMPLING_MODES:
            raise ValueError(f"sampling.mode must be '', 'mean' or 'sample', not {self.mode!r}")

    def inference_overrides(self) -> Dict[str, Any]:
        """Return the InferenceConfig fields these settings replace ({} when mode is '')."""
        if not self.mode:
            return {}
        if self.mode == 'mean':
            return {'mode': 'mean', 'num_samples': 1}
        return {'mode': 'sample', 'num_samples': self.num_samples,
                'temperature': self.temperature, 'noise_correlation': self.noise_correlation,
                'seed': self.seed}
