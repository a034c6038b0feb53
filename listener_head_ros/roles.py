"""
The role a model plays in a conversation: listening to someone, or moving with its own speech.

A *listening* model (:data:`LISTENING`) hears the interlocutor and drives the robot's head
while it listens: the node's ``model``.  A *speaking* model (:data:`SPEAKING`) hears the
robot's own speech and drives the head while the robot talks: the node's ``speaking_model``.
Both are trained by the same pipeline; the role is chosen where the corpus is cut into dialog
streams (:attr:`listener_head_ros.data.iemocap.IemocapConfig.role`) and travels with the
feature cache and the checkpoint, so that a model is never run in the other role.
"""

from __future__ import annotations

from typing import Tuple

LISTENING = 'listener'  # the interlocutor's speech in, the listener's head out
SPEAKING = 'speaker'  # the speaker's own speech in, the speaker's own head out
ROLES: Tuple[str, ...] = (LISTENING, SPEAKING)


def check_role(role: object, what: str = 'role') -> str:
    """Return ``role`` if it is one of :data:`ROLES`; raise ValueError naming ``what``."""
    if role not in ROLES:
        raise ValueError(f'{what} must be one of {", ".join(map(repr, ROLES))}, not {role!r}')
    return str(role)
