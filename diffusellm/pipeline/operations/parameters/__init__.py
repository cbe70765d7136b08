"""Operations add_parameter and remove_parameter: the signature, every call depending on it and the
docstring entry change together (`change`, `calls`, `edit`, `docstrings`).
"""
