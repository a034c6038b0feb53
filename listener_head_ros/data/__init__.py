"""
Datasets: the IEMOCAP and REACT 2025 listener pipelines, their feature cache, synthetic corpora.

:mod:`listener_head_ros.data.source` is the contract every corpus implements (dialog streams
and their split).  :mod:`listener_head_ros.data.iemocap` parses the real IEMOCAP release layout
into dialog streams (speaker audio paired with the marker wearer's head motion, listening
windows from :mod:`listener_head_ros.data.windows`), and
:mod:`listener_head_ros.data.react2025` the REACT 2025 (MARS) release (speaker audio paired
with the listener's facial attributes and FaceVerse coefficients, split train/val/test).
:mod:`listener_head_ros.data.feature_cache` stores any source's features once in safetensors
shards.  :mod:`listener_head_ros.data.synthetic_iemocap` writes a corpus in the exact IEMOCAP
layout with a planted, causally predictable listener response and a known Bayes-floor MAE;
:mod:`listener_head_ros.data.synthetic_react` one in the REACT 2025 layout with a planted
causal, stochastic listener and its oracle.  ``speech_en.wav`` is the bundled demo utterance.
No ROS imports.
"""
