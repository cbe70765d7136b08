"""Operations edit_function, add_function and add_test: whole-function LibCST edits placing code a model
wrote (`functions`, `source`).
"""
