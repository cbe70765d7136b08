"""Thin entry point kept for users of the original description: same as `diffusellm profile PATH`."""

import sys

from diffusellm.cli import app

if __name__ == "__main__":
    app(["profile", *sys.argv[1:]])
