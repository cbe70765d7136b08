"""The diffusion core: a checkpoint-independent masked-diffusion sampler (`sampler`), scaffolds as token ids
(`scaffold`), LLaDA-, Dream- and DiffuCoder-style models through transformers (`hf`), and `load`.
"""
