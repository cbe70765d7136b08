"""Operation rename_symbol: a function, class, method or module-level name renamed everywhere (`symbol`),
refusing names that would clash or be captured (`clash`).
"""
