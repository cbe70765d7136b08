"""Operation move_symbol: a module-level function or class moved to another module with its dependencies,
its importers, re-exports and `__all__` rewritten (`symbol`, with the helpers beside it).
"""
