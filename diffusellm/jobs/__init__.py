"""Durable jobs: states, leases, heartbeats, idempotency keys, on SQLite or PostgreSQL."""
