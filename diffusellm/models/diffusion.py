"""Generation, diffusion core: settings for the masked-diffusion denoiser and the function that loads it.

This module stays light (no torch, no transformers) so configuration can import `DiffusionSettings`
without paying for them; `load_denoiser` imports the heavy parts only when a model is really wanted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

if TYPE_CHECKING:
    from diffusellm.models.diffusion_hf import HFDenoiser


class DiffusionSettings(BaseModel):
    """The masked-diffusion model that fills scaffold holes; `type: none` leaves the holes to the LLM."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["none", "transformers"] = "none"
    model: str = ""
    """Local folder (config.json, tokenizer, weights) or Hugging Face id of a LLaDA-, Dream- or DiffuCoder-style
    checkpoint, or of any bidirectional masked-LM."""
    steps: int = Field(default=32, ge=1)
    """Forward passes allowed for one fill, all holes together; fewer are used when there are fewer masks."""
    block_length: int = Field(default=32, ge=1)
    """Masks per block: blocks are filled left to right, each completely before the next."""
    temperature: float = Field(default=0.0, ge=0.0)
    """Default sampling temperature; 0 is greedy."""
    trust_remote_code: bool = False
    """Run the Python code a checkpoint ships (LLaDA, Dream and DiffuCoder need it). Only for checkpoints you trust."""
    threads: int | None = Field(default=None, ge=1)
    """CPU threads for torch (process-wide); default: torch's own choice."""
    device: str = Field(default="auto", pattern=r"^(auto|cpu|mps|cuda(:\d+)?)$")
    """`auto` picks CUDA when available, else CPU."""
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    """`auto` is bfloat16 on CUDA and float32 elsewhere."""
    logits_shift: bool | None = None
    """True for Dream-style models, whose output at position i predicts the token at i + 1 (Dream, DiffuCoder);
    False for LLaDA and masked LMs, which predict each position in place. Unset: True exactly when the
    checkpoint's `model_type` is Dream's."""
    mask_token_id: int | None = Field(default=None, ge=0)
    """Override for the mask token id; unset, it comes from the tokenizer, then from the model config."""

    @model_validator(mode="after")
    def _model_named(self) -> DiffusionSettings:
        if self.type == "transformers" and not self.model.strip():
            raise ValueError("diffusion.model must name a checkpoint folder or id when diffusion.type is transformers")
        return self


def load_denoiser(settings: DiffusionSettings) -> HFDenoiser | None:
    """The configured denoiser, loaded and ready; None when `type` is `none` (the LLM fills the holes)."""
    if settings.type == "none":
        return None
    from diffusellm.models.diffusion_hf import load_hf_denoiser

    return load_hf_denoiser(settings)
