"""The transformers LLM backend: find, convert (GGUF) and load weights offline (`load`), generate and score
(`generator`), and grammar-constrained JSON through xgrammar (`grammar`).
"""
