"""The `diffusellm` console command: one subcommand per job (`main`), the stage calls and their rendering
(`report`, `render`), and `demo`. Takes command-line arguments and config; hands settings to the pipeline,
the app, the worker and the learning loop, and prints their results (human text, or JSON with `--json`).
"""
