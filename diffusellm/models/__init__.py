"""Model cores behind the protocols in `base` (`TextGenerator`, `Denoiser`): the transformers (`hf/`) and
OpenAI-compatible (`openai_backend`) LLM backends, the diffusion denoiser (`diffusion/`), optional
abilities (`abilities`), lazy loading, diagnostics and an OpenAI-compatible server.
"""
