"""Tests for the transformers denoiser on tiny checkpoints saved to tmp_path and loaded through the settings."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from pydantic import ValidationError
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
from transformers import BertConfig, BertForMaskedLM, BertModel, PreTrainedTokenizerFast

from diffusellm.models.base import Denoiser, Hole, ModelError
from diffusellm.models.diffusion.hf import HFDenoiser, uses_shifted_logits
from diffusellm.models.diffusion.load import load_denoiser
from diffusellm.models.settings import DiffusionSettings

CHARS = list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 _()[]{}:=+-*/.,'\"\n#<>!")
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
PAD_ID, SEP_ID = 0, 3


def char_tokenizer(*, with_mask: bool = True) -> PreTrainedTokenizerFast:
    vocab = {token: i for i, token in enumerate(SPECIALS + CHARS)}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    backend.decoder = decoders.Fuse()
    extra = {"mask_token": "[MASK]"} if with_mask else {}
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]", **extra
    )


def decode(ids: list[int], *, skip_special: bool = False) -> str:
    return str(char_tokenizer().decode(ids, skip_special_tokens=skip_special))


def tiny_bert_config() -> BertConfig:
    return BertConfig(
        vocab_size=len(SPECIALS) + len(CHARS),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=96,
        pad_token_id=PAD_ID,
    )


def save_tiny_bert(folder: Path, *, pad_bias: float = 0.0, with_mask: bool = True) -> Path:
    torch.manual_seed(0)
    model = BertForMaskedLM(tiny_bert_config())
    with torch.no_grad():
        model.cls.predictions.bias[PAD_ID] += pad_bias
    model.save_pretrained(folder)
    char_tokenizer(with_mask=with_mask).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="module")
def denoiser(tiny_bert: Path) -> HFDenoiser:
    loaded = load_denoiser(
        DiffusionSettings(type="transformers", model=str(tiny_bert), steps=8, block_length=4, device="cpu", threads=1)
    )
    assert loaded is not None
    return loaded


HEAD, MIDDLE, TAIL = "def add(a, b):\n    return ", "\n\nprint(add(", "))\n"
SCAFFOLD = [HEAD, Hole(6), MIDDLE, Hole(4), TAIL]


def test_fill_returns_one_text_per_hole_and_keeps_fixed_text_verbatim(denoiser: HFDenoiser) -> None:
    protocol: Denoiser = denoiser
    done = denoiser.denoise(SCAFFOLD, context="# helpers\n", temperature=1.0, seed=5)
    assert len(done.texts) == 2
    assert all(len(text) <= hole.max_tokens for text, hole in zip(done.texts, [Hole(6), Hole(4)], strict=True))
    assert protocol.fill(SCAFFOLD, context="# helpers\n", temperature=1.0, seed=5) == done.texts
    # Around the holes, the final ids are exactly the fixed text's ids.
    (start1, end1), (start2, end2) = done.holes
    assert decode(done.ids[:start1]) == "[CLS]# helpers\n" + HEAD
    assert decode(done.ids[end1:start2]) == MIDDLE
    assert decode(done.ids[end2:]) == TAIL
    # A hole's text is its tokens up to the first padding or separator token.
    body = done.ids[start2:end2]
    cut = next((i for i, token in enumerate(body) if token in (PAD_ID, SEP_ID)), len(body))
    assert done.texts[1] == decode(body[:cut], skip_special=True)
    assert done.sample is not None and done.sample.steps <= 8


def test_fill_is_reproducible_by_seed(denoiser: HFDenoiser) -> None:
    first = denoiser.fill(SCAFFOLD, temperature=1.0, seed=1)
    assert denoiser.fill(SCAFFOLD, temperature=1.0, seed=1) == first
    assert len({tuple(denoiser.fill(SCAFFOLD, temperature=1.0, seed=s)) for s in range(6)}) > 1
    assert denoiser.fill(SCAFFOLD, seed=1) == denoiser.fill(SCAFFOLD, seed=2)  # greedy by default


def test_a_scaffold_without_holes_needs_no_model_call(denoiser: HFDenoiser) -> None:
    done = denoiser.denoise(["x = 1\n"])
    assert done.texts == [] and done.sample is None


def test_padding_ends_a_hole_early(tmp_path: Path) -> None:
    folder = save_tiny_bert(tmp_path / "pad", pad_bias=50.0)
    loaded = load_denoiser(DiffusionSettings(type="transformers", model=str(folder), device="cpu"))
    assert loaded is not None
    assert loaded.fill(["x = ", Hole(5), "\n", Hole(3)]) == ["", ""]


def test_info_names_the_checkpoint_and_its_decoding(denoiser: HFDenoiser, tiny_bert: Path) -> None:
    info = denoiser.info()
    assert (info.name, info.backend, info.device, info.dtype) == (str(tiny_bert), "transformers", "cpu", "float32")
    assert info.parameters is not None and info.parameters > 0
    assert "mask id 4" in info.details and "logits shift off" in info.details


def test_too_long_for_the_model_is_a_model_error(denoiser: HFDenoiser) -> None:
    with pytest.raises(ModelError, match="at most 96") as raised:
        denoiser.fill(["x = ", Hole(200)])
    assert "max_tokens" in raised.value.hint


def test_none_type_loads_nothing_and_transformers_type_needs_a_model() -> None:
    assert load_denoiser(DiffusionSettings()) is None
    with pytest.raises(ValidationError, match="diffusion.model"):
        DiffusionSettings(type="transformers")
    with pytest.raises(ValidationError):
        DiffusionSettings(type="transformers", model="m", unknown=1)  # type: ignore[call-arg]


def test_missing_checkpoint_is_a_model_error_with_a_hint(tmp_path: Path) -> None:
    with pytest.raises(ModelError) as raised:
        load_denoiser(DiffusionSettings(type="transformers", model=str(tmp_path / "nowhere"), device="cpu"))
    assert "diffusion.model" in raised.value.hint


def test_checkpoint_code_is_not_run_unless_trusted(tiny_bert: Path, tmp_path: Path) -> None:
    folder = shutil.copytree(tiny_bert, tmp_path / "remote")
    config = json.loads((folder / "config.json").read_text())
    config["model_type"] = "tiny_llada"  # unknown to transformers: only the checkpoint's own code can build it
    config["auto_map"] = {"AutoConfig": "modeling_tiny.TinyConfig", "AutoModel": "modeling_tiny.TinyModel"}
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelError) as raised:
        load_denoiser(DiffusionSettings(type="transformers", model=str(folder), device="cpu"))
    assert "trust_remote_code" in raised.value.hint
    assert not (folder / "modeling_tiny.py").exists()  # the refusal comes before any code is looked for


def test_a_bare_encoder_without_a_token_head_is_a_model_error() -> None:
    settings = DiffusionSettings(type="transformers", model="bare-bert")
    bare = HFDenoiser(
        BertModel(tiny_bert_config()), char_tokenizer(), settings=settings, mask_id=4, logits_shift=False, max_length=96
    )
    with pytest.raises(ModelError, match="no logits"):
        bare.fill(["x = ", Hole(3)])


def test_mask_token_comes_from_settings_when_the_checkpoint_has_none(tmp_path: Path) -> None:
    folder = save_tiny_bert(tmp_path / "nomask", with_mask=False)
    with pytest.raises(ModelError, match="no mask token"):
        load_denoiser(DiffusionSettings(type="transformers", model=str(folder), device="cpu"))
    loaded = load_denoiser(DiffusionSettings(type="transformers", model=str(folder), device="cpu", mask_token_id=4))
    assert loaded is not None and len(loaded.fill(["a", Hole(2)])[0]) <= 2


def test_dream_checkpoints_get_shifted_logits() -> None:
    assert uses_shifted_logits(tiny_bert_config()) is False
    assert uses_shifted_logits(SimpleNamespace(model_type="Dream")) is True  # Dream's and DiffuCoder's config


REMOTE_MODEL = """
from transformers import BertConfig, BertForMaskedLM


class TinyDreamConfig(BertConfig):
    model_type = "Dream"


class TinyDreamModel(BertForMaskedLM):
    config_class = TinyDreamConfig
"""

REMOTE_SCRIPT = """
import json, shutil, sys
sys.path.insert(0, sys.argv[1])
import modeling_tiny
from tests.models.diffusion.test_hf import char_tokenizer, tiny_bert_config
from diffusellm.models.base import Hole
from diffusellm.models.diffusion.load import load_denoiser
from diffusellm.models.settings import DiffusionSettings

folder = sys.argv[2]
config = modeling_tiny.TinyDreamConfig(**tiny_bert_config().to_diff_dict())
config.mask_token_id = 4
modeling_tiny.TinyDreamModel(config).save_pretrained(folder)
char_tokenizer(with_mask=False).save_pretrained(folder)
saved = json.load(open(folder + "/config.json"))
saved["auto_map"] = {"AutoConfig": "modeling_tiny.TinyDreamConfig", "AutoModel": "modeling_tiny.TinyDreamModel"}
json.dump(saved, open(folder + "/config.json", "w"))
shutil.copy(sys.argv[1] + "/modeling_tiny.py", folder)
loaded = load_denoiser(DiffusionSettings(type="transformers", model=folder, device="cpu", trust_remote_code=True))
texts = loaded.fill(["def f(x):\\n    return ", Hole(5), "\\n"], seed=1, temperature=1.0)
print(json.dumps({"details": loaded.info().details, "texts": texts}))
"""


def test_remote_code_checkpoints_load_through_automodel_when_trusted(tmp_path: Path) -> None:
    """A Dream-style checkpoint: own code under AutoModel, mask id only in its config, shifted logits."""
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "modeling_tiny.py").write_text(textwrap.dedent(REMOTE_MODEL))
    # Run apart so the checkpoint's code is cached under tmp_path, not in the user's Hugging Face folder.
    env = {"HF_MODULES_CACHE": str(tmp_path / "modules"), "PYTHONPATH": str(Path(__file__).parents[3])}
    done = subprocess.run(
        [sys.executable, "-c", REMOTE_SCRIPT, str(tmp_path / "src"), str(tmp_path / "ckpt")],
        capture_output=True,
        text=True,
        env={**_base_env(), **env},
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert "mask id 4" in result["details"] and "logits shift on" in result["details"]
    assert len(result["texts"]) == 1 and len(result["texts"][0]) <= 5
    assert (tmp_path / "modules").is_dir()


def _base_env() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if key != "HF_MODULES_CACHE"}


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_fill_on_the_gpu_matches_the_scaffold(tiny_bert: Path) -> None:
    loaded = load_denoiser(DiffusionSettings(type="transformers", model=str(tiny_bert), device="cuda", steps=4))
    assert loaded is not None and loaded.info().device.startswith("cuda")
    texts = loaded.fill(SCAFFOLD, temperature=1.0, seed=3)
    assert len(texts) == 2 and texts == loaded.fill(SCAFFOLD, temperature=1.0, seed=3)
