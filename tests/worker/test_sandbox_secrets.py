"""sandbox.pass_env against secrets: diffusellm's own never pass, look-alikes only when allowed."""

from __future__ import annotations

import pytest

from diffusellm.config import Settings, load_settings
from diffusellm.errors import ConfigError
from diffusellm.worker.sandbox import refused_pass_env, sandbox_from_settings


def _settings(tmp_path: object, *overrides: str) -> Settings:
    return load_settings(None, [f"state_dir={tmp_path}/state", *overrides])


def test_the_apps_own_secret_variables_are_refused(tmp_path: object) -> None:
    settings = _settings(
        tmp_path,
        'sandbox.pass_env=["DIFFUSELLM_ADMIN_TOKEN", "OPENAI_API_KEY", "MY_LLM_CRED", "LANG_X"]',
        'llm={"type": "openai", "base_url": "http://127.0.0.1:9", "model": "m", "api_key_env": "MY_LLM_CRED"}',
    )
    assert refused_pass_env(settings) == ["DIFFUSELLM_ADMIN_TOKEN", "MY_LLM_CRED", "OPENAI_API_KEY"]
    with pytest.raises(ConfigError, match="DIFFUSELLM_ADMIN_TOKEN, MY_LLM_CRED, OPENAI_API_KEY"):
        sandbox_from_settings(settings, {"MY_LLM_CRED": "sk-x"})


def test_configured_token_names_are_refused_even_when_allowed(tmp_path: object) -> None:
    settings = _settings(
        tmp_path,
        "server.worker_token_env=WORKERPASS",
        'sandbox.pass_env=["WORKERPASS"]',
        'sandbox.allow_secret=["WORKERPASS"]',
    )
    assert refused_pass_env(settings) == ["WORKERPASS"]


def test_names_that_look_like_secrets_need_allow_secret(tmp_path: object) -> None:
    names = '["PIP_INDEX_TOKEN", "DB_PASSWORD", "aws_secret", "SSH_KEY_PATH", "LANGUAGE"]'
    refused = refused_pass_env(_settings(tmp_path, f"sandbox.pass_env={names}"))
    assert refused == ["DB_PASSWORD", "PIP_INDEX_TOKEN", "SSH_KEY_PATH", "aws_secret"]
    allowed = _settings(tmp_path, f"sandbox.pass_env={names}", 'sandbox.allow_secret=["SSH_KEY_PATH"]')
    assert refused_pass_env(allowed) == ["DB_PASSWORD", "PIP_INDEX_TOKEN", "aws_secret"]
    assert refused_pass_env(_settings(tmp_path, 'sandbox.pass_env=["LANGUAGE", "PYTHONWARNINGS"]')) == []
