"""Phase 7, the commit builder: format only what changed, the changelog entry in the repository's format,
the commit message in its convention and the pull request's summary (`commit`, `changelog`, `text`,
`summary`). Takes the work copy, the spec, the style and the validation report; hands on the texts and files.
"""
