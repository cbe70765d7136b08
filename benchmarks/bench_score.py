"""Scoring many replies to one prompt with the transformers backend: the prompt read once (the
kept keys and values of `HFTextGenerator.score`) against one forward pass per reply over prompt and
reply together (`text_logprobs`, what `score` did before).

The prompt is a real issue (the first of the SWE-bench Lite dev set in ../shared, cut to --chars
characters) with a question after it; the replies are --answers sentences naming made-up functions,
the shape of the normaliser's target question. Prints the prompt's token count, both timings and the
largest difference between the two scores.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_score.py [--answers 20] [--chars 4000] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from diffusellm.models.abilities import sum_logprobs  # noqa: E402
from diffusellm.models.base import ChatMessage  # noqa: E402
from diffusellm.models.hf.generator import HFTextGenerator  # noqa: E402
from diffusellm.models.settings import TransformersLLM  # noqa: E402

ISSUES = Path("/work/shared/benchmarks/swe-bench-lite-localise-dev.jsonl")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--answers", type=int, default=20)
    parser.add_argument("--chars", type=int, default=4000)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    llm = HFTextGenerator.load(TransformersLLM(threads=args.threads), ROOT / ".state")
    issue = json.loads(ISSUES.read_text(encoding="utf-8").splitlines()[0])["problem_statement"]
    messages: list[ChatMessage] = [
        {"role": "user", "content": issue[: args.chars] + "\n\nWhich function should change?"}]
    answers = [f"The function `pkg.mod.func_{i}`." for i in range(args.answers)]
    prompt = llm.prompt_text(messages)
    started = time.perf_counter()
    each = [sum_logprobs(llm.text_logprobs(prompt + a, from_char=len(prompt))) for a in answers]
    one_pass_each = time.perf_counter() - started
    started = time.perf_counter()
    kept = [llm.score(messages, a) for a in answers]
    prompt_kept = time.perf_counter() - started
    print(f"prompt tokens: {llm.count_tokens(prompt)}, replies: {len(answers)}, threads: {args.threads}")
    print(f"one forward pass per reply: {one_pass_each:.1f} s")
    print(f"prompt kept (score): {prompt_kept:.1f} s")
    print(f"largest score difference: {max(abs(a - b) for a, b in zip(each, kept, strict=True)):.1e}")


if __name__ == "__main__":
    main()
