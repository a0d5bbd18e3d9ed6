"""Duplicate firms: detection on create and import, a review queue, reversible merges."""
