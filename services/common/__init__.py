"""Shared infrastructure of every linkages service.

Each module holds the one implementation of a mechanism all services use the same
way: settings, database, errors, pagination, idempotency, principals, the change
feed, HTTP clients, logging, metrics and health.
"""
