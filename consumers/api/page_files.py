"""The court page's files under ``/static/``: its ES modules, stylesheet and markup.

The page's script is a graph of ES modules fetched one by one, so two things matter that did not
for one classic script.  A module is refused by the browser unless it is served with a JavaScript
MIME type, and Python's guess for ``.js`` depends on the machine's ``mime.types``: ``.js`` is
always ``text/javascript`` here.  And a browser must never run a module of a new page beside one
it kept from an old one: every file says ``no-cache``, so it is revalidated on each load (its
ETag answers 304 while it is unchanged) rather than kept for a guessed while.
"""

from __future__ import annotations

import os

from fastapi.staticfiles import StaticFiles
from starlette.responses import Response
from starlette.types import Scope

JAVASCRIPT = "text/javascript; charset=utf-8"
# What the page's own responses say about caching: keep, but ask before each use.
REVALIDATE = {"cache-control": "no-cache"}


class PageFiles(StaticFiles):
    """:class:`StaticFiles` that serves ``.js`` as JavaScript and asks for revalidation."""

    def file_response(
        self,
        full_path: str | os.PathLike[str],
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers.update(REVALIDATE)
        if os.fspath(full_path).endswith(".js") and response.status_code != 304:
            response.headers["content-type"] = JAVASCRIPT
        return response
