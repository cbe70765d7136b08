"""diffuseLLM agent: a self-hosted coding bot that turns issues into validated pull requests."""
