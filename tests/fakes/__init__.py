"""Test doubles named as fakes: a stateful GitHub double, signed webhook deliveries, a job store."""
