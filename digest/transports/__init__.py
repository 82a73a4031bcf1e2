"""Transports: how one message reaches one recipient (SMTP, Maildir, memory)."""
