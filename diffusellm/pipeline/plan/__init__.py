"""Phase 4, generative planning: candidate operation sequences for a spec, from the model, ranked by the
scorer with features of the repository (`candidates`, `features`, `prompts`). Takes a `Spec` and its
localisation; hands on ranked `Plan`s.
"""
