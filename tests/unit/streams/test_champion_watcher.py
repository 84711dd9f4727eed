"""The stream's champion watcher refuses a version that cannot be served: it keeps scoring with
the champion it has, logs why, counts the failed load, and does not load the same version again
until its periodic registry check."""

from __future__ import annotations

import asyncio
import json
import logging

import numpy as np
import pytest

from models import registry
from parivision.metrics import STREAM, for_job
from parivision.settings import Settings
from streams.scoring import Scorer
from streams.watcher import ChampionWatcher

MISSING = "its artifact is missing at file:///store/m-5/artifacts"


class _Constant:
    def __init__(self, p):
        self.p = p

    def predict(self, matrix):
        return np.full(len(matrix), self.p)


@pytest.fixture
def watch(monkeypatch):
    """A watcher over a scorer holding v1; the registry's alias and broken versions are ours."""
    state = {"alias": "1", "broken": {"5": MISSING}}
    loads: list[str] = []

    def load_version(settings, version):
        loads.append(version)
        if version in state["broken"]:
            raise registry.BadModelError("m", version, state["broken"][version])
        return registry.Champion("m", version, _Constant(0.7))

    monkeypatch.setattr(registry, "champion_version", lambda settings: state["alias"])
    monkeypatch.setattr(registry, "alias_version", lambda settings, alias: state.get(alias))
    monkeypatch.setattr(registry, "load_version", load_version)
    monkeypatch.setattr(registry, "reference_log_loss", lambda settings, version: None)
    metrics = for_job(STREAM)
    watcher = ChampionWatcher(
        Settings(model_name="m"),
        Scorer(registry.Champion("m", "1", _Constant(0.3))),
        metrics=metrics,
    )

    def errors() -> float:
        value = metrics.registry.get_sample_value(
            "parivision_model_loads_total", {"outcome": "error"}
        )
        return value or 0.0

    return watcher, state, loads, errors


def _promoted(version: str) -> bytes:
    return json.dumps({"event": "promoted", "model": "m", "version": version}).encode()


def test_a_bad_version_is_refused_once_logged_and_counted(watch, caplog):
    watcher, state, loads, errors = watch
    state["alias"] = "5"
    with caplog.at_level(logging.WARNING, logger="parivision.stream"):
        asyncio.run(watcher.on_event(_promoted("5")))
    assert watcher.scorer.champion.version == "1"
    assert loads == ["5"] and errors() == 1
    assert watcher.refused == {"5": MISSING}
    (record,) = caplog.records
    assert record.levelno == logging.ERROR
    assert "refused v5 as the champion of m (promoted event for v5)" in record.getMessage()
    assert f"cannot be served: {MISSING}" in record.getMessage()
    assert record.getMessage().endswith("still scoring with v1")

    # The same event again, and a reconnection's look at the registry: not loaded again.
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="parivision.stream"):
        asyncio.run(watcher.on_event(_promoted("5")))
        asyncio.run(watcher.check_registry("start"))
    assert loads == ["5"] and errors() == 1
    assert all("refused already" in r.getMessage() for r in caplog.records)
    assert watcher.swaps == []


def test_the_periodic_check_tries_a_refused_version_again_and_swaps_once_it_is_repaired(watch):
    watcher, state, loads, errors = watch
    state["alias"] = "5"
    asyncio.run(watcher.on_event(_promoted("5")))
    asyncio.run(watcher.check_registry("periodic registry check", retry_refused=True))
    assert loads == ["5", "5"] and errors() == 2
    assert watcher.scorer.champion.version == "1"

    del state["broken"]["5"]  # its artifact put back
    asyncio.run(watcher.check_registry("periodic registry check", retry_refused=True))
    assert watcher.scorer.champion.version == "5"
    assert watcher.swaps == [("1", "5")] and watcher.refused == {}
    assert errors() == 2


def test_after_a_refusal_a_good_promotion_still_swaps(watch):
    watcher, state, loads, _ = watch
    state["alias"] = "5"
    asyncio.run(watcher.on_event(_promoted("5")))
    state["alias"] = "6"
    asyncio.run(watcher.on_event(_promoted("6")))
    assert watcher.scorer.champion.version == "6"
    assert loads == ["5", "6"] and watcher.swaps == [("1", "6")]


def test_a_registry_that_does_not_answer_is_not_a_refusal(watch, monkeypatch, caplog):
    watcher, state, loads, errors = watch

    def down(settings):
        raise ConnectionError("registry unreachable")

    monkeypatch.setattr(registry, "champion_version", down)
    with caplog.at_level(logging.WARNING, logger="parivision.stream"):
        asyncio.run(watcher.on_event(_promoted("5")))
    assert "could not read the champion alias of m" in caplog.text
    assert loads == [] and errors() == 0 and watcher.refused == {}


def test_the_version_in_the_shadow_alias_is_scored_beside_the_champion_and_never_served(watch):
    from models.features import FEATURE_NAMES

    watcher, state, loads, _ = watch
    state["shadow"] = "4"
    asyncio.run(watcher.on_event(json.dumps({"event": "shadowing", "model": "m"}).encode()))
    scorer = watcher.scorer
    assert scorer.shadow.version == "4" and scorer.champion.version == "1"
    assert loads == ["4"]
    assert watcher.metrics.registry.get_sample_value("parivision_shadow_version") == 4.0

    # The champion alias moves to the shadow (a promotion): no second load, the model in hand
    # is swapped in; the old champion, now in the shadow alias, is kept as it was.
    state["alias"], state["shadow"] = "4", "1"
    asyncio.run(watcher.on_event(_promoted("4")))
    assert (scorer.champion.version, scorer.shadow.version) == ("4", "1")
    assert loads == ["4"]

    state["shadow"] = None  # the watch ended
    asyncio.run(watcher.check_registry("periodic registry check"))
    assert scorer.shadow is None
    assert watcher.metrics.registry.get_sample_value("parivision_shadow_version") == 0.0
    assert len(FEATURE_NAMES) == 39
