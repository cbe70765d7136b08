"""Model cores: LLM backends, structured output, the diffusion denoiser, the plan scorer."""
