"""A CSV of subscribers sent over the web (the API body, the page's form), imported as the
CLI imports a file: the same service, all or nothing, confirmations mailed after commit."""

from __future__ import annotations

import tempfile
from datetime import timedelta
from pathlib import Path

from digest.mail.confirmation import import_and_confirm
from digest.web.context import WebContext
from subscribers.csv_import import CsvReport, ImportOptions

UPLOAD_NAME = "upload.csv"  # the file name rejected rows are reported under


def import_upload(ctx: WebContext, data: bytes, pending: bool = False) -> CsvReport:
    """Import ``data`` as `digest subscribers import` would a file; ImportRejected if bad."""
    options = ImportOptions(
        pending=pending,
        confirm_interval=timedelta(minutes=ctx.settings.confirm_interval_minutes),
        default_cadence=ctx.settings.default_cadence,
    )
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / UPLOAD_NAME
        path.write_bytes(data)
        report, _ = import_and_confirm(ctx.factory, ctx.settings, path, options)
    return report
