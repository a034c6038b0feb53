"""
Datasets: the IEMOCAP listener pipeline, its feature cache and a synthetic IEMOCAP corpus.

:mod:`listener_head_ros.data.iemocap` parses the real release layout into listener
samples (speaker audio paired with the marker wearer's head motion),
:mod:`listener_head_ros.data.feature_cache` stores their features once in safetensors
shards, and :mod:`listener_head_ros.data.synthetic_iemocap` writes a corpus in the exact
IEMOCAP layout with a planted, causally predictable listener response and a known
Bayes-floor MAE.  ``speech_en.wav`` is the bundled demo utterance.  No ROS imports.
"""
