"""Reference finding shared by the deterministic operations: module bindings, one-file scans LibCST resolves,
class hierarchies, jedi for uses through instances, names in text; `uses` gives every use of a symbol or refuses.
"""
