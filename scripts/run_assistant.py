"""Thin entry point kept for users of the original description: same as `diffusellm run SPEC --repo PATH`."""

import sys

from diffusellm.cli import app

if __name__ == "__main__":
    app(["run", *sys.argv[1:]])
