"""Settings: the shipped config.yaml, precedence of file, environment and overrides, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from diffusellm.config import Settings, load_settings
from diffusellm.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def test_shipped_config_documents_the_defaults() -> None:
    shipped = load_settings(ROOT / "config.yaml")
    assert shipped == Settings()


def test_environment_beats_file_and_override_beats_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("sandbox:\n  memory_mb: 3000\n  processes: 99\n")
    assert load_settings(config).sandbox.memory_mb == 3000
    monkeypatch.setenv("DIFFUSELLM_SANDBOX__MEMORY_MB", "2000")
    settings = load_settings(config)
    assert (settings.sandbox.memory_mb, settings.sandbox.processes) == (2000, 99)
    settings = load_settings(config, ["sandbox.memory_mb=1000"])
    assert (settings.sandbox.memory_mb, settings.sandbox.processes) == (1000, 99)


def test_unknown_key_names_key_file_and_allowed_keys(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("sandbox:\n  memroy_mb: 3\n")
    with pytest.raises(ConfigError) as info:
        load_settings(config)
    text = str(info.value)
    assert "sandbox.memroy_mb" in text and str(config) in text and "memory_mb" in text


def test_wrong_value_names_allowed_values(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(None, ["log_level=loud"])
    assert "log_level" in str(info.value) and "'debug'" in str(info.value)


def test_bad_yaml_and_missing_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("sandbox: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings(broken)
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="section.key=value"):
        load_settings(None, ["no-equals-sign"])
