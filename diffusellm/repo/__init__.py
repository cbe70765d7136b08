"""Understanding a repository: style profile, parsing, knowledge graph, signature trie."""
