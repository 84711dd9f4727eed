"""What the API scores with: the champion follows its alias, a registry that is down keeps the
old champion serving with the error said, and the learners follow the stream's checkpoint."""

from __future__ import annotations

import os

import pytest

from consumers.api import serving
from consumers.api.serving import ModelHolder
from models import registry
from models.features import FEATURE_SET
from models.online import checkpoint_path
from models.registry import Champion
from parivision.settings import Settings


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(
        home=tmp_path / "home",
        model_name="shots",
        champion_alias="champion",
        mlflow_tracking_uri="http://registry.test:5000",
        online_learners="bias,on_champion",
    )


class Registry:
    """The registry's answers: which version holds the alias, and every load asked for."""

    def __init__(self, monkeypatch, version: str | None, tags: dict | None = None) -> None:
        self.version = version
        self.loaded: list[str] = []
        self.error: Exception | None = None
        monkeypatch.setattr(registry, "champion_version", self.champion_version)
        monkeypatch.setattr(registry, "load_version", self.load_version)
        monkeypatch.setattr(registry, "version_tags", lambda settings, version: tags or {})

    def champion_version(self, settings):
        if self.error is not None:
            raise self.error
        return self.version

    def load_version(self, settings, version):
        self.loaded.append(version)
        return Champion(settings.registered_model(), version, model=None)


def test_with_no_champion_the_error_says_to_train(settings, monkeypatch):
    Registry(monkeypatch, None)
    holder = ModelHolder(settings)
    holder.refresh()
    assert holder.served.champion is None and holder.served.info == {}
    assert holder.error == (
        "no version of 'shots' has the alias 'champion': run `parivision train`"
    )


def test_the_champion_is_loaded_once_and_described_from_its_tags(settings, monkeypatch):
    found = Registry(monkeypatch, "3", tags={"candidate": "lightgbm"})
    holder = ModelHolder(settings)
    holder.refresh()
    holder.refresh()
    assert found.loaded == ["3"]
    assert holder.served.champion.version == "3" and holder.error is None
    assert holder.served.info == {
        "name": "shots",
        "version": "3",
        "feature_set": FEATURE_SET,
        "candidate": "lightgbm",
    }


def test_a_moved_alias_loads_the_new_version(settings, monkeypatch):
    found = Registry(monkeypatch, "3")
    holder = ModelHolder(settings)
    holder.refresh()
    found.version = "4"
    holder.refresh()
    assert found.loaded == ["3", "4"] and holder.served.info["version"] == "4"


def test_a_registry_that_is_down_keeps_the_champion_and_says_where_it_looked(settings, monkeypatch):
    found = Registry(monkeypatch, "3")
    holder = ModelHolder(settings)
    holder.refresh()
    found.error = ConnectionError("connection refused")
    holder.refresh()
    assert holder.served.champion.version == "3"
    assert holder.error == "registry at http://registry.test:5000: connection refused"
    found.error = None
    holder.refresh()
    assert holder.error is None


def test_the_first_look_is_signalled_after_the_registry_was_asked(settings, monkeypatch):
    Registry(monkeypatch, None)
    holder = ModelHolder(settings, recheck_s=60)
    holder.start()
    try:
        assert holder.first_look.wait(5)
        assert "run `parivision train`" in holder.error
    finally:
        holder.stop()
    assert not holder._thread.is_alive()


@pytest.fixture
def checkpoint(settings, monkeypatch):
    """The learners' file, and what reading it gives (the format is the stream's business)."""
    path = checkpoint_path(settings)
    path.parent.mkdir(parents=True)
    reads = []

    def read(data: bytes):
        reads.append(data)
        if data == b"broken":
            raise ValueError("checkpoint format 1")
        return {name: {"model": f"{name} model"} for name in data.decode().split(",")}

    monkeypatch.setattr(serving, "read_checkpoint", read)
    Registry(monkeypatch, None)

    def write(content: bytes, mtime: float):
        path.write_bytes(content)
        os.utime(path, (mtime, mtime))

    return write, reads


def test_before_the_stream_saved_learners_there_are_none(settings, monkeypatch):
    Registry(monkeypatch, None)
    holder = ModelHolder(settings)
    holder.refresh()
    assert holder.served.learners == {} and holder.served.learners_saved is None


def test_the_learners_named_in_settings_come_first_then_the_others(settings, checkpoint):
    write, _ = checkpoint
    write(b"arf,on_champion,bias", 1000.0)
    holder = ModelHolder(settings)
    holder.refresh()
    assert list(holder.served.learners) == ["bias", "on_champion", "arf"]
    assert holder.served.learners["arf"] == "arf model"
    assert holder.served.learners_saved == 1000.0


def test_the_learners_are_read_again_only_when_the_stream_saved_again(settings, checkpoint):
    write, reads = checkpoint
    write(b"bias", 1000.0)
    holder = ModelHolder(settings)
    holder.refresh()
    holder.refresh()
    assert reads == [b"bias"]
    write(b"bias,arf", 2000.0)
    holder.refresh()
    assert reads == [b"bias", b"bias,arf"] and list(holder.served.learners) == ["bias", "arf"]


def test_an_unreadable_checkpoint_keeps_the_learners_already_served(settings, checkpoint, caplog):
    write, _ = checkpoint
    write(b"bias", 1000.0)
    holder = ModelHolder(settings)
    holder.refresh()
    write(b"broken", 2000.0)
    holder.refresh()
    assert list(holder.served.learners) == ["bias"] and holder.served.learners_saved == 1000.0
    assert "could not read the online learners" in caplog.text
    assert "checkpoint format 1" in caplog.text
