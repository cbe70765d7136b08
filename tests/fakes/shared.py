"""Where the workplace's shared/ folder is: beside the repository's clone, or $DIFFUSELLM_SHARED_DIR."""

from __future__ import annotations

import os
from pathlib import Path


def shared_dir() -> Path:
    """The shared/ folder holding GitHub's OpenAPI description and example webhook payloads."""
    explicit = os.environ.get("DIFFUSELLM_SHARED_DIR")
    if explicit:
        return Path(explicit)
    return Path(__file__).resolve().parents[2].parent / "shared"
