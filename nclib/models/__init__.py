"""Model zoos (audio: Table 1; image: Figure 2).

Every model built here sets ``model.penultimate`` (the name, in ``model.named_modules()``, of the module whose
output is the penultimate embedding: a 4-D output is global-average-pooled, a 3-D one averaged over time),
``model.has_source_head`` (``model(x)`` returns source-task logits usable by LEEP / NCE) and ``model.head_name``
(the module ``nclib.train.replace_head`` swaps).

A zoo name ``name@k`` is the checkpoint of network ``name`` after ``k`` epochs of its source pre-training, from the
same run as plain ``name`` (its full length); :func:`checkpoint` splits and checks such names for every track.
"""

from __future__ import annotations

from nclib.models.audio import build_audio
from nclib.models.image import build_image
from nclib.models.names import checkpoint

__all__ = ["build_audio", "build_image", "checkpoint"]
