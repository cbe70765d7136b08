"""Phase 5, agent collaboration: the LLM drafts scaffolds, the diffusion model (or the LLM) fills their holes,
the checks validate, and failing lines are re-denoised within caps (`loop`, `draft`, `fill`, `regions`,
`scaffold`, `prompts`). Takes a `Plan` and a trial function that applies and validates; hands on the
attempts and the best validated code.
"""
