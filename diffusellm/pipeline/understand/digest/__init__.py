"""Phase 2, digestion: every Python file parsed (tree-sitter fast path, scopes), its symbols, imports, calls
and references stored in SQLite, incremental by git blob id (`build.digest_repository`). Takes a work
copy; hands on the knowledge-graph database that `understand.graph` reads.
"""
