"""
Offline evaluation of a listener model on a bag: read it, simulate the node, score the trace.

The three jobs live in their own modules: :mod:`listener_head_ros.bags.reader` (reading and
checking the bag), :mod:`listener_head_ros.eval.simulate` (the node's loop without ROS) and
:mod:`listener_head_ros.eval.scoring` (metrics per listener turn). The listener is built by
:func:`listener_head_ros.build.build_listener` from the same parameter file the node reads, so
the offline figure is the node's figure (torch's thread count included). A bag with a
transcript topic also supplies transcripts to a model that reads text, as the replayed node
does with ``topics.speech`` set to it.
"""

from __future__ import annotations

from pathlib import Path
import time
from typing import Callable, Optional

from listener_head_ros.bags.reader import BagContents
from listener_head_ros.build import build_listener, Listener, OFFLINE_INPUTS
from listener_head_ros.eval.scoring import EvalResult, score_trace
from listener_head_ros.eval.simulate import simulate_node
from listener_head_ros.models.base import TRANSCRIPT
from listener_head_ros.settings import load_listener_settings


def offline_listener(params_file: Optional[Path] = None, *, model: Optional[str] = None,
                     device: Optional[str] = None, transcripts: bool = False) -> Listener:
    """
    Build the listener as the node would from ``params_file``, with optional overrides.

    ``transcripts``: the bag has recognition results to feed a model that reads text.
    """
    return build_listener(load_listener_settings(params_file, model=model, device=device),
                          available_inputs=OFFLINE_INPUTS | ({TRANSCRIPT} if transcripts
                                                             else set()))


def evaluate_offline(contents: BagContents, model: Optional[str] = None,
                     params_file: Optional[Path] = None, device: Optional[str] = None,
                     progress: Optional[Callable[[float], None]] = None) -> EvalResult:
    """Run and score a model on a bag offline, with the node's settings; time it."""
    listener = offline_listener(params_file, model=model, device=device,
                                transcripts=bool(contents.transcripts))
    start = time.perf_counter()
    trace = simulate_node(contents, listener, progress)
    result = score_trace('offline', trace, contents)
    result.wall_seconds = time.perf_counter() - start
    result.audio_seconds = contents.audio_seconds
    return result
