"""Localisation: code chunks, lexical and embedding indexes, graph signals and their fusion into a ranking
(`query`), and the grounding an issue's reading starts from (`context.Localised`). Takes an issue's text
and the digested repository; hands on ranked files and functions with their source.
"""
