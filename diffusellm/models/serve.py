"""LLM core, serving: an OpenAI-compatible HTTP server (FastAPI + uvicorn) for any `TextGenerator`.

A GPU box can host the models and workers reach them with the `openai` backend.

Endpoints: `/v1/models`; `/v1/chat/completions` (free text, or `response_format` json_schema
through `generate_json`); `/v1/completions` with `echo`, `logprobs` and `max_tokens: 0` for
scoring, when the generator can score raw text (the transformers backend can).
"""

from __future__ import annotations

import argparse
import socket
import threading
import time
import uuid
from collections.abc import Generator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from diffusellm.errors import DiffuseLLMError
from diffusellm.models.abilities import TokenCounter, TokenScorer
from diffusellm.models.base import ChatMessage, TextGenerator
from diffusellm.models.llm import load_llm
from diffusellm.models.settings import EMBEDDED_DEFAULT, TransformersLLM


class _Loose(BaseModel):
    # OpenAI clients send many optional fields (top_p, user, ...); unknown ones are ignored.
    model_config = ConfigDict(extra="ignore")


class _TextPart(_Loose):
    type: Literal["text"] = "text"
    text: str


class _Message(_Loose):
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[_TextPart]

    def chat(self) -> ChatMessage:
        text = (
            self.content if isinstance(self.content, str) else "".join(p.text for p in self.content)
        )
        role = "system" if self.role == "developer" else self.role
        return {"role": role, "content": text}


class _JsonSchema(_Loose):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    name: str = "reply"
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    strict: bool | None = None


class _ResponseFormat(_Loose):
    type: Literal["text", "json_schema", "json_object"] = "text"
    json_schema: _JsonSchema | None = None


class ChatRequest(_Loose):
    """The part of OpenAI's chat completion request this server honours."""

    model: str
    messages: list[_Message]
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    temperature: float = 1.0
    seed: int | None = None
    stop: str | list[str] | None = None
    response_format: _ResponseFormat | None = None
    n: int = 1
    stream: bool = False


class CompletionRequest(_Loose):
    """The scoring form of OpenAI's legacy completion request."""

    model: str
    prompt: str | list[str]
    max_tokens: int = 16
    echo: bool = False
    logprobs: int | None = None


class _BadRequestError(DiffuseLLMError):
    """A request this server cannot honour."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def create_app(generator: TextGenerator, *, model_name: str | None = None) -> FastAPI:
    """The FastAPI app serving `generator` under `model_name` (default: its `info().name`)."""
    name = model_name or generator.info().name
    lock = threading.Lock()  # generators hold one model; run one request at a time
    app = FastAPI(title="diffusellm models serve", docs_url=None, redoc_url=None)

    def models() -> dict[str, Any]:
        card = {"id": name, "object": "model", "created": 0, "owned_by": "diffusellm"}
        return {"object": "list", "data": [card]}

    def chat(request: ChatRequest) -> dict[str, Any]:
        _check_model(request.model, name)
        with lock:
            return _chat_response(generator, name, request)

    def complete(request: CompletionRequest) -> dict[str, Any]:
        _check_model(request.model, name)
        with lock:
            return _completion_response(generator, name, request)

    app.add_exception_handler(DiffuseLLMError, _error_response)
    app.add_api_route("/v1/models", models, methods=["GET"])
    app.add_api_route("/v1/chat/completions", chat, methods=["POST"])
    app.add_api_route("/v1/completions", complete, methods=["POST"])
    return app


async def _error_response(request: Request, exc: Exception) -> JSONResponse:
    """OpenAI's error body, `{"error": {"message": ...}}`, for the product's own errors."""
    status = exc.status if isinstance(exc, _BadRequestError) else 400
    body = {"error": {"message": str(exc), "type": "invalid_request_error", "code": None}}
    return JSONResponse(body, status_code=status)


def _chat_response(generator: TextGenerator, name: str, request: ChatRequest) -> dict[str, Any]:
    text = _chat_reply(generator, request)
    message = {"role": "assistant", "content": text}
    choice = {"index": 0, "message": message, "finish_reason": "stop", "logprobs": None}
    reply: dict[str, Any] = {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": name,
        "choices": [choice],
    }
    if isinstance(generator, TokenCounter):  # only the reply's count is known here
        reply["usage"] = {"completion_tokens": generator.count_tokens(text)}
    return reply


def _completion_response(
    generator: TextGenerator, name: str, request: CompletionRequest
) -> dict[str, Any]:
    logprobs = _echo_logprobs(generator, request)
    prompt = request.prompt if isinstance(request.prompt, str) else request.prompt[0]
    choice = {"index": 0, "text": prompt, "logprobs": logprobs, "finish_reason": "length"}
    return {
        "id": f"cmpl-{uuid.uuid4().hex}",
        "object": "text_completion",
        "created": int(time.time()),
        "model": name,
        "choices": [choice],
    }


def _check_model(asked: str, served: str) -> None:
    if asked != served:
        raise _BadRequestError(
            f"model {asked!r} is not served here; this server has {served!r}", 404
        )


def _chat_reply(generator: TextGenerator, request: ChatRequest) -> str:
    if request.stream or request.n != 1:
        raise _BadRequestError("stream and n > 1 are not supported; send stream: false and n: 1")
    messages = [m.chat() for m in request.messages]
    budget = request.max_completion_tokens or request.max_tokens
    fmt = request.response_format or _ResponseFormat()
    if fmt.type == "json_object":
        raise _BadRequestError("response_format json_object is not supported; send json_schema")
    if fmt.type == "json_schema":
        if fmt.json_schema is None or fmt.json_schema.schema_ is None:
            raise _BadRequestError("response_format json_schema needs json_schema.schema")
        return generator.generate_json(
            messages,
            fmt.json_schema.schema_,
            max_new_tokens=budget or 512,
            temperature=request.temperature,
            seed=request.seed,
        )
    stop = [request.stop] if isinstance(request.stop, str) else request.stop or []
    return generator.generate(
        messages,
        max_new_tokens=budget or 256,
        temperature=request.temperature,
        seed=request.seed,
        stop=stop,
    )


def _echo_logprobs(generator: TextGenerator, request: CompletionRequest) -> dict[str, Any]:
    if isinstance(request.prompt, list) and len(request.prompt) != 1:
        raise _BadRequestError("send one prompt per request")
    if request.max_tokens != 0 or not request.echo or request.logprobs is None:
        raise _BadRequestError(
            "/v1/completions here only scores text: send echo: true, logprobs: 1 "
            "and max_tokens: 0 (use /v1/chat/completions to generate)"
        )
    if not isinstance(generator, TokenScorer):
        raise _BadRequestError("this model's backend cannot score raw text", 501)
    prompt = request.prompt if isinstance(request.prompt, str) else request.prompt[0]
    tokens = generator.text_logprobs(prompt)
    return {
        "tokens": [t.token for t in tokens],
        "token_logprobs": [t.logprob for t in tokens],
        "text_offset": [t.start for t in tokens],
        "top_logprobs": None,
    }


@dataclass
class RunningServer:
    """A server started by `serving`, reachable at `base_url`."""

    host: str
    port: int

    @property
    def base_url(self) -> str:
        """`http://host:port` (clients add `/v1/...`)."""
        return f"http://{self.host}:{self.port}"


@contextmanager
def serving(
    generator: TextGenerator,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    model_name: str | None = None,
) -> Generator[RunningServer]:
    """Serve `generator` from a background thread while the block runs (port 0: a free port)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    config = uvicorn.Config(
        create_app(generator, model_name=model_name), log_level="warning", lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.02)
        if not server.started:
            raise DiffuseLLMError(
                f"the model server did not start on {host}:{sock.getsockname()[1]}"
            )
        yield RunningServer(host, int(sock.getsockname()[1]))
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def run_server(
    generator: TextGenerator,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    model_name: str | None = None,
) -> None:
    """Serve `generator` in the foreground until interrupted."""
    app = create_app(generator, model_name=model_name)
    uvicorn.run(app, host=host, port=port, log_level="info")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="diffusellm models serve",
        description="Serve a transformers model over an OpenAI-compatible HTTP API.",
    )
    parser.add_argument(
        "--model",
        default=EMBEDDED_DEFAULT,
        help="model folder, .gguf file or embedded:smollm2-135m",
    )
    parser.add_argument("--name", default=None, help="model name clients send (default: --model)")
    parser.add_argument("--state-dir", type=Path, default=Path("~/.local/state/diffusellm"))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--load-in", choices=["none", "4bit", "8bit"], default="none")
    parser.add_argument("--adapter", action="append", default=[], help="LoRA adapter folder")
    parser.add_argument("--threads", type=int, default=1)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """`diffusellm models serve`: load one transformers model and serve it until interrupted."""
    args = _parser().parse_args(argv)
    settings = TransformersLLM(
        model=args.model,
        device=args.device,
        load_in=args.load_in,
        adapters=args.adapter,
        threads=args.threads,
    )
    generator = load_llm(settings, args.state_dir.expanduser())
    run_server(generator, host=args.host, port=args.port, model_name=args.name)
    return 0
