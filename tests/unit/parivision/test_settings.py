"""A deployment is a name: every name it uses is its own, and the default keeps the plain ones."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from parivision.settings import Settings


def settings(**values) -> Settings:
    return Settings(_env_file=None, home="/tmp/pv-home", **values)


def test_the_default_deployment_keeps_the_names_existing_homes_use():
    s = settings()
    assert s.deployment_name() == "default"
    assert (s.topic("shots.attempts"), s.stream_group()) == (
        "shots.attempts",
        "parivision-stream",
    )
    assert (s.registered_model(), s.database(), s.sink_consumer_group()) == (
        "parivision-shot",
        "parivision",
        "parivision-sink",
    )
    assert str(s.deployment_dir("reports")) == "/tmp/pv-home/reports"
    assert str(s.deployment_dir("logs")) == "/tmp/pv-home/logs"


def test_a_named_deployment_owns_its_topics_groups_model_database_and_folders():
    s = settings(deployment="west")
    assert s.topic("shots.attempts") == "west.shots.attempts"
    assert s.stream_group() == "west.parivision-stream"
    assert s.registered_model() == "parivision-shot-west"
    assert s.database() == "parivision-west"
    assert s.sink_consumer_group() == "parivision-sink-west"
    assert str(s.deployment_dir("reports")) == "/tmp/pv-home/deployments/west/reports"
    assert not s.shares_registered_model()


def test_two_deployments_share_no_name():
    a, b = settings(deployment="a"), settings(topic_prefix="b.")
    names = [
        lambda s: s.topic("shots.scored"),
        lambda s: s.stream_group(),
        lambda s: s.sink_consumer_group(),
        lambda s: s.registered_model(),
        lambda s: s.database(),
        lambda s: s.deployment_dir("reports"),
        lambda s: s.deployment_dir("logs"),
    ]
    for name in names:
        assert name(a) != name(b)


@pytest.mark.parametrize(
    ("prefix", "name"), [("b.", "b"), ("team-b_", "team-b"), ("x.y.", "x-y"), ("..", "default")]
)
def test_the_name_comes_from_the_topic_prefix_when_not_given(prefix, name):
    assert settings(topic_prefix=prefix).deployment_name() == name


def test_a_prefix_or_a_model_set_by_hand_wins_and_a_shared_model_says_so():
    s = settings(deployment="a", topic_prefix="legacy.", model_name="parivision-shot")
    assert s.topic("shots.dlq") == "legacy.shots.dlq"
    assert s.registered_model() == "parivision-shot"
    assert s.shares_registered_model()
    assert not settings(model_name="parivision-shot").shares_registered_model()


@pytest.mark.parametrize("bad", ["-a", "a b", "a/b", "a.b", "x" * 49])
def test_a_name_that_cannot_be_a_database_or_a_folder_is_refused(bad):
    with pytest.raises(ValidationError, match="deployment"):
        settings(deployment=bad)
