"""Delivery: the ledger, the manager that drives an edition to a transport, throttling, reports."""
