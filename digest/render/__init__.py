"""Rendering an edition once: Jinja2 -> MJML -> HTML, and the plain-text part."""
