"""The models a run may use, built from settings: the LLM and scorer loaded only when first used, the
diffusion model when configured, and the learned core chooser when one was trained."""

from __future__ import annotations

from diffusellm.config import Settings
from diffusellm.learn.core_predictor import PREDICTOR_FILE, CorePredictor
from diffusellm.models.diffusion.load import load_denoiser
from diffusellm.models.lazy import LazyTextGenerator
from diffusellm.models.llm import load_llm
from diffusellm.pipeline.job import CoreChooser, Models


def configured_models(settings: Settings) -> Models:
    """The configured models; the LLMs load on first use, so a YAML-only run never loads one."""
    state = settings.state_path()
    llm = LazyTextGenerator(lambda: load_llm(settings.llm, state))
    scorer_settings = settings.scorer
    scorer = LazyTextGenerator(lambda: load_llm(scorer_settings, state)) if scorer_settings else None
    reader = settings.normaliser
    normaliser = LazyTextGenerator(lambda: load_llm(reader, state)) if reader else None
    denoiser = load_denoiser(settings.diffusion)
    return Models(
        llm=llm,
        scorer=scorer,
        normaliser=normaliser,
        denoiser=denoiser,
        generation=settings.generation,
        core_chooser=core_chooser(settings) if denoiser is not None else None,
    )


def core_chooser(settings: Settings) -> CoreChooser | None:
    """The trained core predictor's `choose`, when core selection is on and one was trained."""
    path = settings.state_path() / "learn" / PREDICTOR_FILE
    if not settings.learn.core_selection or not path.is_file():
        return None
    return CorePredictor.load(path).choose
