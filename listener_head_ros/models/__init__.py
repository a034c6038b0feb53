"""
Streaming listener models: speech audio in, one :class:`ListenerFrame` per hop out.

Every model implements :class:`listener_head_ros.models.base.StreamingListenerModel`.
:mod:`listener_head_ros.models.prosodic` holds the embedded default, which needs no checkpoint.
"""
