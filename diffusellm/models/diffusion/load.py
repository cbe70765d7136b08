"""Generation, diffusion core: load the configured masked-diffusion denoiser.

Light on purpose: torch and transformers are imported only when a model is really wanted.
"""

from __future__ import annotations

from diffusellm.models.base import Denoiser
from diffusellm.models.settings import DiffusionSettings


def load_denoiser(settings: DiffusionSettings) -> Denoiser | None:
    """The configured denoiser, loaded and ready; None when `type` is `none` (the LLM fills the holes)."""
    if settings.type == "none":
        return None
    from diffusellm.models.diffusion.hf import load_hf_denoiser

    return load_hf_denoiser(settings)
