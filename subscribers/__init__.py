"""Subscribers: the model, its lifecycle, import and export."""
