"""The GitHub App server: webhooks, event router, comment commands, admin pages, worker API."""
