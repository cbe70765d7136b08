"""The worker process: pull jobs (`loop`, over HTTP in `remote`), execute one (`execute`: check the frozen
request, run the pipeline, push, open the PR), report on the forge (`forge_report`), and build the
configured models (`models`) and sandbox (`sandbox`) once for every entry point.
"""
