"""Forges the bot talks to: the Forge protocol, GitHub (REST, App auth) and a plain local git repository."""
