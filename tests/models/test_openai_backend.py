"""Tests for the OpenAI-compatible backend against the real server running the real SmolLM2.

Both backends must agree on the same model.
"""

from __future__ import annotations

import json
import socket
from typing import Any

import httpx
import pytest

from diffusellm.models.base import ChatMessage, ModelError, TextGenerator
from diffusellm.models.hf.generator import HFTextGenerator
from diffusellm.models.openai_backend import OpenAITextGenerator, continuation_logprob, render_prompt
from diffusellm.models.serve import RunningServer, serving
from diffusellm.models.settings import OpenAILLM
from tests.models.conftest import SERVED_NAME

FRANCE: list[ChatMessage] = [
    {"role": "system", "content": "You answer in one short sentence."},
    {"role": "user", "content": "What is the capital of France?"},
]
CITY = {"type": "object", "properties": {"city": {"type": "string", "maxLength": 20},
                                         "country": {"enum": ["France", "Spain"]}},
        "required": ["city", "country"]}


@pytest.fixture
def client(smollm_server: RunningServer) -> OpenAITextGenerator:
    settings = OpenAILLM(base_url=smollm_server.base_url + "/v1", model=SERVED_NAME, api_key_env=None)
    return OpenAITextGenerator.from_settings(settings)


def test_generate_over_http_matches_the_model_in_process(client: OpenAITextGenerator, smollm: HFTextGenerator) -> None:
    generator: TextGenerator = client
    assert generator.generate(FRANCE, max_new_tokens=16) == smollm.generate(FRANCE, max_new_tokens=16)
    assert client.last_completion_tokens == smollm.count_tokens(smollm.generate(FRANCE, max_new_tokens=16))
    assert "Paris" not in client.generate(FRANCE, max_new_tokens=16, stop=["Paris"])


def test_generate_json_over_http_is_constrained_by_the_server(client: OpenAITextGenerator, smollm: HFTextGenerator) -> None:
    reply = client.generate_json(FRANCE, CITY, max_new_tokens=40)
    assert reply == smollm.generate_json(FRANCE, CITY, max_new_tokens=40)
    assert json.loads(reply)["country"] in ("France", "Spain")


def test_score_over_http_equals_the_in_process_score(client: OpenAITextGenerator, smollm: HFTextGenerator) -> None:
    assert render_prompt(FRANCE, "chatml") == smollm.prompt_text(FRANCE)
    sensible = client.score(FRANCE, "The capital of France is Paris.")
    assert sensible == pytest.approx(smollm.score(FRANCE, "The capital of France is Paris."), abs=1e-4)
    assert sensible > client.score(FRANCE, "Purple seven banana under clock.") + 10


def test_models_lists_the_served_name_and_other_names_are_refused(smollm_server: RunningServer) -> None:
    listed = httpx.get(smollm_server.base_url + "/v1/models").json()
    assert [m["id"] for m in listed["data"]] == [SERVED_NAME]
    wrong = OpenAITextGenerator(smollm_server.base_url, "gpt-4o", api_key_env=None)
    with pytest.raises(ModelError, match="HTTP 404") as caught:
        wrong.generate(FRANCE, max_new_tokens=4)
    assert "/v1/models" in caught.value.hint


def test_scoring_through_a_server_that_cannot_score_says_so(client: OpenAITextGenerator) -> None:
    # A second server in front of the first one: its generator is the HTTP client, which cannot
    # score raw text, so /v1/completions must refuse with a clear message.
    with serving(client, model_name="proxy") as proxy:
        through = OpenAITextGenerator(proxy.base_url, "proxy", api_key_env=None)
        assert "Paris" in through.generate(FRANCE, max_new_tokens=16)
        with pytest.raises(ModelError, match="HTTP 501") as caught:
            through.score(FRANCE, "Paris.")
    assert "echo=true" in caught.value.hint and "scorer.type: transformers" in caught.value.hint


def test_an_unreachable_server_is_a_model_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    down = OpenAITextGenerator(f"http://127.0.0.1:{port}", "m", api_key_env=None, timeout_s=5)
    with pytest.raises(ModelError, match="cannot reach"):
        down.generate(FRANCE)


def test_the_api_key_comes_only_from_the_named_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        message = {"role": "assistant", "content": '{"a": 1}'}
        return httpx.Response(200, json={"choices": [{"message": message}], "usage": {"completion_tokens": 5}})

    monkeypatch.setenv("DIFFUSELLM_TEST_KEY", "sk-test-123")
    keyed = OpenAITextGenerator("http://llm.invalid/v1", "m", "DIFFUSELLM_TEST_KEY",
                                transport=httpx.MockTransport(answer))
    assert keyed.generate_json(FRANCE, CITY) == '{"a": 1}' and keyed.last_completion_tokens == 5
    body: dict[str, Any] = json.loads(seen[0].content)
    assert seen[0].headers["Authorization"] == "Bearer sk-test-123"
    assert str(seen[0].url) == "http://llm.invalid/v1/chat/completions"
    assert body["response_format"] == {"type": "json_schema",
                                       "json_schema": {"name": "reply", "schema": CITY, "strict": True}}
    monkeypatch.delenv("DIFFUSELLM_TEST_KEY")
    OpenAITextGenerator("http://llm.invalid", "m", "DIFFUSELLM_TEST_KEY",
                        transport=httpx.MockTransport(answer)).generate(FRANCE)
    assert "Authorization" not in seen[1].headers


def test_continuation_logprob_counts_tokens_past_the_prompt_and_ignores_generated_ones() -> None:
    # text "ab|cd" + one generated token: "b" ends inside the prompt, "cd" straddles nothing,
    # a token starting at 5 is past the echoed text.
    logprobs = {"text_offset": [0, 1, 2, 3, 5], "token_logprobs": [None, -1.0, -2.0, -4.0, -8.0]}
    assert continuation_logprob(logprobs, prompt_chars=2, text_chars=5) == -6.0
    assert continuation_logprob(logprobs, prompt_chars=1, text_chars=5) == -7.0
    with pytest.raises(ModelError, match="text_offset"):
        continuation_logprob({"token_logprobs": [-1.0]}, prompt_chars=0, text_chars=1)
