"""Editions: assembling new stories into one, and the schedule's slots."""
