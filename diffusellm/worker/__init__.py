"""The pipeline that runs on the worker: workspace, spec, operations, validation, commit, runner."""
