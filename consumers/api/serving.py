"""What the API scores with: the champion from the registry and the stream's online learners.

The champion alias is the truth, as in the stream: the API looks at it every ``recheck_s``
seconds and loads a new version in the background while it keeps answering with the old one.
The online learners are the stream group's last checkpoint (:func:`models.online.
checkpoint_path`), read again whenever the stream saves a newer one; before the stream has saved
one, answers carry no online probabilities.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from models import registry
from models.features import FEATURE_SET
from models.online import checkpoint_path, read_checkpoint
from models.registry import Champion
from parivision.settings import Settings

log = logging.getLogger("parivision.api")


@dataclass(frozen=True)
class Served:
    """One consistent moment: the champion, its description and the learners."""

    champion: Champion | None
    info: dict[str, Any] = field(default_factory=dict)
    learners: dict[str, Any] = field(default_factory=dict)
    learners_saved: float | None = None


class ModelHolder:
    """Keeps :class:`Served` up to date from the registry and the learners' checkpoint."""

    def __init__(self, settings: Settings, *, recheck_s: float = 5.0) -> None:
        self.settings = settings
        self.recheck_s = recheck_s
        self.served = Served(champion=None)
        self.error: str | None = None
        self._learners_mtime: float | None = None
        self._stop = threading.Event()
        self.first_look = threading.Event()  # set once the registry was asked, answer or not
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        """Load the champion in the background, then look again every ``recheck_s``."""
        self.error = "loading the champion"
        self._thread = threading.Thread(target=self._run, name="model-holder", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        self.refresh()
        self.first_look.set()
        while not self._stop.wait(self.recheck_s):
            self.refresh()

    def refresh(self) -> None:
        """Load the champion if the alias moved, and the learners if the stream saved again."""
        with self._lock:
            served = self.served
            champion, info = served.champion, served.info
            try:
                version = registry.champion_version(self.settings)
                if version is None:
                    champion, info = None, {}
                    self.error = (
                        f"no version of {self.settings.registered_model()!r} has the alias "
                        f"{self.settings.champion_alias!r}: run `parivision train`"
                    )
                elif champion is None or champion.version != version:
                    champion = registry.load_version(self.settings, version)
                    info = self._describe(version)
                    log.info("serving %s v%s", self.settings.registered_model(), version)
                    self.error = None
                else:
                    self.error = None
            except Exception as error:  # the registry is down or the version cannot load
                self.error = f"registry at {self.settings.mlflow()}: {error}"
                log.warning("could not refresh the champion: %s", self.error)
            learners, saved = self._learners(served)
            self.served = Served(champion, info, learners, saved)

    def _describe(self, version: str) -> dict[str, Any]:
        tags = registry.version_tags(self.settings, version)
        return {
            "name": self.settings.registered_model(),
            "version": version,
            "feature_set": tags.get("feature_set", FEATURE_SET),
            "candidate": tags.get("candidate"),
        }

    def _learners(self, served: Served) -> tuple[dict[str, Any], float | None]:
        path = checkpoint_path(self.settings)
        try:
            mtime = path.stat().st_mtime
        except OSError:
            return {}, None
        if mtime == self._learners_mtime:
            return served.learners, served.learners_saved
        try:
            stored = read_checkpoint(path.read_bytes())
        except (OSError, ValueError) as error:
            log.warning("could not read the online learners at %s: %s", path, error)
            return served.learners, served.learners_saved
        self._learners_mtime = mtime
        wanted = [n.strip() for n in self.settings.online_learners.split(",") if n.strip()]
        names = [n for n in wanted if n in stored] + [n for n in stored if n not in wanted]
        return {name: stored[name]["model"] for name in names}, mtime
