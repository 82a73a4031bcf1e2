"""axe-core for the browser tests: where its script is, and one WCAG 2 A/AA run on a page.

`make axe` (part of `make test`) puts axe.min.js from the npm package axe-core
under .venv/axe/; without it the fixture fetches the package with `npm pack`
into the test session's temporary folder. It is never committed.
"""

from __future__ import annotations

import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import Any

AXE_PACKAGE = "axe-core@4"
TAGS = ["wcag2a", "wcag2aa"]
REPO = Path(__file__).resolve().parent.parent
INSTALLED = REPO / ".venv" / "axe" / "axe.min.js"


def find_or_fetch(cache: Path) -> Path | None:
    """axe.min.js from .venv/axe, or fetched with npm into ``cache``; None without npm."""
    if INSTALLED.is_file():
        return INSTALLED
    target = cache / "axe.min.js"
    if target.is_file():
        return target
    npm = shutil.which("npm")
    if npm is None:
        return None
    cache.mkdir(parents=True, exist_ok=True)
    packed = subprocess.run(
        [npm, "pack", AXE_PACKAGE, "--silent", "--pack-destination", str(cache)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    ).stdout.split()[-1]
    with tarfile.open(cache / packed) as archive:
        member = archive.extractfile("package/axe.min.js")
        assert member is not None
        target.write_bytes(member.read())
    return target


def violations(page: Any, script: str) -> list[str]:
    """WCAG 2 A/AA violations axe-core finds on ``page`` (its frames aside), one line each."""
    page.add_script_tag(content=script)
    found = page.evaluate(
        """tags => axe.run(document, {runOnly: {type: 'tag', values: tags}, iframes: false})
             .then(r => r.violations.map(v => v.id + ': ' + v.help + ' — ' +
                 v.nodes.map(n => n.target.join(' ')).slice(0, 3).join(', ')))""",
        TAGS,
    )
    return [str(line) for line in found]
