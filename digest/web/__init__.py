"""The web app: operator pages and API, previews, the public archive, subscriber pages."""
