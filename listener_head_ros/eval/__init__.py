"""
Evaluation metrics for listener models (ROS-free: numpy and scipy only).

* :mod:`.head_metrics`: the Active Listener protocol for head poses (per-utterance MAE in
  degrees for roll, pitch and yaw, Pearson correlation, aggregation per fold and overall).
* :mod:`.react_metrics`: the REACT challenge suite (FRC, FRD, FRDiv, FRVar, FRDvs, FRSyn) for
  models that output several samples per input, in a ``challenge`` and a ``corrected`` mode.
* :mod:`.latency`: latency, rate, gap and drop statistics from message timestamps.

``docs/metrics.md`` gives the formulas and the differences between the REACT modes.
"""
