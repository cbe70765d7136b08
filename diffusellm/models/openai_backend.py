"""LLM core, HTTP backend: a `TextGenerator` talking to any OpenAI-compatible server.

vLLM, llama.cpp server, Ollama or `diffusellm models serve`.

Generation uses `/v1/chat/completions`; JSON uses `response_format` `json_schema` with `strict`;
scoring uses `/v1/completions` with `echo`, `logprobs` and `max_tokens: 0`, which only some
servers implement (vLLM and `diffusellm models serve` do; llama.cpp server and Ollama do not).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any, Literal, cast

import httpx

from diffusellm.models.base import ChatMessage, ModelError, ModelInfo
from diffusellm.models.settings import OpenAILLM

Template = Literal["chatml", "llama3", "plain"]


def render_prompt(messages: Sequence[ChatMessage], template: Template) -> str:
    """`messages` as raw prompt text in the served model's chat format, ending where the reply
    starts (needed only for scoring, where the server sees raw text)."""
    if template == "chatml":
        turns = [f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages]
        return "".join(turns) + "<|im_start|>assistant\n"
    if template == "llama3":  # the server adds <|begin_of_text|> itself
        turns = [
            f"<|start_header_id|>{m['role']}<|end_header_id|>\n\n{m['content']}<|eot_id|>"
            for m in messages
        ]
        return "".join(turns) + "<|start_header_id|>assistant<|end_header_id|>\n\n"
    return "".join(f"{m['role']}: {m['content']}\n" for m in messages) + "assistant: "


def continuation_logprob(logprobs: dict[str, Any], prompt_chars: int, text_chars: int) -> float:
    """Sum of the log-probs of the echoed tokens that reach past the first `prompt_chars`
    characters (a token straddling the boundary counts as continuation), ignoring any token
    generated after the echoed text."""
    offsets = [int(o) for o in cast(list[int], logprobs.get("text_offset") or [])]
    values = cast(list[float | None], logprobs.get("token_logprobs") or [])
    if not offsets or len(offsets) != len(values):
        raise ModelError(
            "the server's logprobs carry no usable text_offset/token_logprobs",
            hint="score with a server that implements echo with logprobs (vLLM)",
        )
    ends = [*offsets[1:], text_chars]
    total = 0.0
    for start, end, value in zip(offsets, ends, values, strict=True):
        if end > prompt_chars and start < text_chars and value is not None:
            total += float(value)
    return total


class OpenAITextGenerator:
    """A model served over HTTP with the OpenAI API; the API key comes from the environment."""

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key_env: str | None = "OPENAI_API_KEY",
        *,
        timeout_s: float = 120.0,
        score_template: Template = "chatml",
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/").removesuffix("/v1")
        self.model = model
        self.score_template: Template = score_template
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(api_key_env, "") if api_key_env else ""
        if key:
            headers["Authorization"] = f"Bearer {key}"
        self._client = httpx.Client(
            base_url=self.base_url, headers=headers, timeout=timeout_s, transport=transport
        )
        self.last_completion_tokens: int | None = None
        """`usage.completion_tokens` of the last generate call, when the server reported it."""

    @classmethod
    def from_settings(cls, settings: OpenAILLM) -> OpenAITextGenerator:
        """The client the `llm` (or `scorer`) section describes."""
        return cls(
            settings.base_url,
            settings.model,
            settings.api_key_env,
            timeout_s=settings.timeout_s,
            score_template=settings.score_template,
        )

    def close(self) -> None:
        """Close the HTTP connections."""
        self._client.close()

    def info(self) -> ModelInfo:
        """The model name and the server it runs on (device and dtype are the server's business)."""
        return ModelInfo(
            name=self.model,
            backend="openai",
            device=f"remote {self.base_url}",
            dtype="unknown",
            details=f"score_template={self.score_template}",
        )

    def generate(
        self,
        messages: Sequence[ChatMessage],
        *,
        max_new_tokens: int = 256,
        temperature: float = 0.0,
        seed: int | None = None,
        stop: Sequence[str] = (),
    ) -> str:
        """The assistant's reply from `/v1/chat/completions`."""
        body = self._chat_body(messages, max_new_tokens, temperature, seed)
        if stop:
            body["stop"] = list(stop)
        return self._chat(body)

    def generate_json(
        self,
        messages: Sequence[ChatMessage],
        schema: dict[str, Any],
        *,
        max_new_tokens: int = 512,
        temperature: float = 0.0,
        seed: int | None = None,
    ) -> str:
        """A reply the server constrained to `schema` (`response_format` json_schema, strict)."""
        body = self._chat_body(messages, max_new_tokens, temperature, seed)
        body["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "reply", "schema": schema, "strict": True},
        }
        text = self._chat(body)
        try:
            json.loads(text)
        except json.JSONDecodeError as exc:
            raise ModelError(
                f"{self.base_url} returned text that is not JSON for a json_schema request: {exc}",
                hint="the server must support response_format json_schema (vLLM, llama.cpp "
                "server and recent Ollama do); or raise max_new_tokens",
            ) from None
        return text

    def score(self, messages: Sequence[ChatMessage], continuation: str) -> float:
        """Sum of log-probs of `continuation` after the rendered prompt (an echoed completion)."""
        prompt = render_prompt(messages, self.score_template)
        text = prompt + continuation
        body = {
            "model": self.model,
            "prompt": text,
            "echo": True,
            "logprobs": 1,
            "max_tokens": 0,
            "temperature": 0.0,
        }
        data = self._post("/v1/completions", body, scoring=True)
        try:
            logprobs = cast(dict[str, Any], data["choices"][0]["logprobs"])
        except (KeyError, IndexError, TypeError):
            logprobs = None
        if not logprobs:
            raise ModelError(
                f"{self.base_url} returned no logprobs for an echoed completion", hint=_SCORE_HINT
            )
        return continuation_logprob(logprobs, len(prompt), len(text))

    def _chat_body(
        self,
        messages: Sequence[ChatMessage],
        max_new_tokens: int,
        temperature: float,
        seed: int | None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [dict(m) for m in messages],
            "max_tokens": max_new_tokens,
            "temperature": temperature,
        }
        if seed is not None:
            body["seed"] = seed
        return body

    def _chat(self, body: dict[str, Any]) -> str:
        data = self._post("/v1/chat/completions", body)
        try:
            content: Any = data["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            raise ModelError(
                f"{self.base_url} sent a chat completion without choices[0].message",
                hint="check that the server speaks the OpenAI chat API",
            ) from None
        usage: Any = data.get("usage")
        tokens = _field(usage, "completion_tokens")
        self.last_completion_tokens = tokens if isinstance(tokens, int) else None
        return str(content or "")

    def _post(self, path: str, body: dict[str, Any], *, scoring: bool = False) -> dict[str, Any]:
        try:
            response = self._client.post(path, json=body)
        except httpx.HTTPError as exc:
            raise ModelError(
                f"cannot reach {self.base_url}{path}: {exc}",
                hint="is the server running? check base_url in the llm settings",
            ) from None
        if response.status_code >= 400:
            raise ModelError(
                f"{self.base_url}{path} answered HTTP {response.status_code}: "
                f"{_error_message(response)}",
                hint=_SCORE_HINT if scoring else _hint_for(response.status_code),
            )
        try:
            return cast(dict[str, Any], response.json())
        except ValueError:
            raise ModelError(
                f"{self.base_url}{path} did not answer with JSON",
                hint="check base_url points at an OpenAI-compatible API",
            ) from None


_SCORE_HINT = (
    "scoring needs /v1/completions with echo=true, logprobs and max_tokens=0 (vLLM and "
    "`diffusellm models serve` support it; llama.cpp server and Ollama do not): point the scorer "
    "at such a server, or use scorer.type: transformers"
)


def _hint_for(status: int) -> str:
    if status in (401, 403):
        return "set the API key in the environment variable named by api_key_env"
    if status == 404:
        return "check the model name and base_url (the server lists its models at /v1/models)"
    return "see the server's log"


def _error_message(response: httpx.Response) -> str:
    try:
        data: Any = response.json()
    except ValueError:
        return response.text[:300]
    message = _field(_field(data, "error"), "message") or _field(data, "detail")
    return str(message)[:300] if message else response.text[:300]


def _field(obj: Any, key: str) -> Any:
    """`obj[key]` when `obj` is a JSON object that has it, else None."""
    return cast(dict[str, Any], obj).get(key) if isinstance(obj, dict) else None
