"""The operations a spec names, as LibCST edits across the whole repository, all or nothing (`apply`):
deterministic `rename/`, `move/` and `parameters/` (with the reference finding they share in `refs/`), and
the `generative/` operations whose code a model writes. Takes a `Spec`'s operations and the work copy;
hands on the new text of every changed file (written by `apply.write_changes`).
"""
