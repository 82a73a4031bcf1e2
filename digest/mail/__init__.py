"""Messages: MIME byte templates, the per-recipient factory, DKIM, the pre-send check."""
