"""Delivery: the send service, edition lifecycle, claims, the manager that drives an edition
to a transport, bounces, throttling, reports."""
