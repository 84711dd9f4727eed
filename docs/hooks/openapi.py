"""MkDocs hook: the API reference's ``openapi.json``, built from the app at every docs build.

The schema is the one ``parivision serve`` answers at ``/openapi.json``: :func:`create_app` only
wires routes (connecting waits for the app's lifespan, which never starts here), so nothing needs
to run and the page can never describe an older API than the code.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from mkdocs.structure.files import File, Files

SCHEMA = "openapi.json"


def on_files(files: Files, config) -> Files:
    # The checkout beside mkdocs.yml, not whichever one the environment installed.
    root = str(Path(config.config_file_path).resolve().parent)
    if root not in sys.path:
        sys.path.insert(0, root)
    from consumers.api import create_app
    from parivision.settings import Settings

    with tempfile.TemporaryDirectory() as home:
        # Defaults, not this machine's .env: the reference should not depend on who builds it.
        settings = Settings(_env_file=None, home=home, form_history="")
        schema = create_app(settings, follow_feed=False).openapi()
    files.append(File.generated(config, SCHEMA, content=json.dumps(schema, indent=1)))
    return files
