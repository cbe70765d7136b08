"""Entry point under the original description's name: the same as `diffusellm run SPEC`."""

import sys

from diffusellm.cli.main import app

if __name__ == "__main__":
    app(["run", *sys.argv[1:]])
