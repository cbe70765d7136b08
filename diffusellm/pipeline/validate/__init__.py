"""Phase 6, validation: ruff, pyright and pytest on the base and on the change inside a bubblewrap sandbox
(`sandbox`), only new failures counting (`checks`, `findings`). Takes two checkouts, the changed files and
`ValidationSettings`; hands on a `ValidationReport` (`report`).
"""
