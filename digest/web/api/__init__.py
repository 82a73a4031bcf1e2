"""The operator JSON API under /api."""
