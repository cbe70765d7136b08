"""Entry point under the original description's name: the same as `diffusellm profile PATH`."""

import sys

from diffusellm.cli.main import app

if __name__ == "__main__":
    app(["profile", *sys.argv[1:]])
