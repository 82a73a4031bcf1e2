"""The operator JSON API under /api: schemas, one router per resource, assembled in routes."""
