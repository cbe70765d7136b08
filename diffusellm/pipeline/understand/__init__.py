"""Phases 1–2, understanding the repository: its style (`style/`), its code digested into a knowledge graph
(`digest/`, `graph`) and a signature trie (`trie`). Takes a work copy; hands on a `StyleProfile`, the graph
database and the trie, written into the repository's state folder.
"""
