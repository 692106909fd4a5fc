"""Model zoos (audio: Table 1; image: Figure 2).

Every model built here sets ``model.penultimate`` (the name, in ``model.named_modules()``, of the module whose
output is the penultimate embedding: a 4-D output is global-average-pooled, a 3-D one averaged over time),
``model.has_source_head`` (``model(x)`` returns source-task logits usable by LEEP / NCE) and ``model.head_name``
(the module ``nclib.train.replace_head`` swaps).
"""

from __future__ import annotations

from nclib.models.audio import build_audio
from nclib.models.image import build_image

__all__ = ["build_audio", "build_image"]
