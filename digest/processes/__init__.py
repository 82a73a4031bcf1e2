"""Long-running processes and their helpers: clock, worker, queue, capture sink, demo."""
