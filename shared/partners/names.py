"""Partner names as operators tell them apart: one name per partner, compared without case, spacing
at either end or Unicode presentation form.

``AirLink``, ``airlink `` and ``ＡｉｒＬｉｎｋ`` (full-width) are one name: a second is refused. The
comparison key is the name NFKC-normalised, case-folded, NFKC-normalised again and trimmed (so a
fold that leaves a compatibility form is normalised too); the ``partners.name_key`` column keeps its SHA-256 (a fixed
width whatever the name: case folding and NFKC may lengthen a name many times), and its unique
constraint refuses a second partner with the same key even where two onboardings race.
"""

from __future__ import annotations

import hashlib
import unicodedata

MAX_NAME = 200  # partners.name is String(200)


def comparable(name: str) -> str:
    """The form two names are compared in: trimmed, NFKC, case-folded."""
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", name).casefold())
    return folded.strip()


def name_key(name: str) -> str:
    """``partners.name_key``: SHA-256 (hex) of ``comparable(name)``."""
    return hashlib.sha256(comparable(name).encode("utf-8")).hexdigest()
