"""Phase 1, style profiling: indentation, quotes, line length, naming per identifier kind, docstrings, imports,
commit and changelog conventions (`infer.profile_style`). Takes a work copy; hands on a `StyleProfile`
(`profile`) and the ruff settings and naming database written from it (`artifacts`).
"""
