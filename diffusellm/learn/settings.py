"""Phase 8 settings: whether runs are remembered and how LoRA adapters are trained (`learn:`).

Light on purpose (pydantic only): configuration imports these without loading torch or peft.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class LoraSettings(BaseModel):
    """LoRA fine-tuning of the `llm` model on accepted runs (`diffusellm learn train`)."""

    model_config = ConfigDict(extra="forbid")

    rank: int = Field(default=8, ge=1, le=256)
    alpha: int = Field(default=16, ge=1)
    dropout: float = Field(default=0.05, ge=0.0, lt=1.0)
    target_modules: list[str] = Field(default_factory=lambda: ["q_proj", "v_proj"], min_length=1)
    """Module names the adapters wrap (attention projections of Llama/Qwen-style models)."""
    steps: int = Field(default=60, ge=1)
    learning_rate: float = Field(default=2e-4, gt=0.0)
    max_tokens: int = Field(default=768, ge=32)
    """Longest example in tokens; longer prompts are cut from the left, the reply is kept."""
    seed: int = 0
    threads: int = Field(default=1, ge=1)


class LearnSettings(BaseModel):
    """The learning loop (`learn:` in config.yaml)."""

    model_config = ConfigDict(extra="forbid")

    record_outcomes: bool = True
    """Remember every run in `<state>/learn/outcomes.sqlite` so accepted ones can become training data."""
    lora: LoraSettings = Field(default_factory=LoraSettings)
    core_selection: bool = True
    """With a diffusion model configured and a core predictor trained (`diffusellm learn train-core`),
    let it choose per job between the diffusion model and the LLM; off: the diffusion model always fills."""
    core_min_examples: int = Field(default=8, ge=1)
    """Runs a core needs before its predicted success counts; until then that core is tried."""
