"""`python -m diffusellm`: the same console command as `diffusellm`."""

from diffusellm.cli.main import main

main()
