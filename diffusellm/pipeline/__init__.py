"""The pipeline: one issue or spec in, a validated branch and a report out.

`runner` (`run_spec`, `run_issue`) is the one place that chains the phases; `job` holds one run's context
and the steps every run ends with; `issue_plan` and `issue_job` take a free-text issue through phases 3–5.
The phases are the subpackages, in the order data flows: understand → locate → normalise → plan →
operations / generate → validate → deliver. Shared ground below them all: `spec` (the Spec contract),
`project` (the repository's Python files as text), `settings` (`generation:`) and `workspace` (git).
"""
