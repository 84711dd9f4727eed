"""The replay with no broker to take its messages: it waits for one, then says which it was."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import KafkaError

from parivision.settings import Settings
from parivision.sources.synthetic import SyntheticSource
from producers.pacing import make_pacer
from producers.replay import Delivery, DeliveryError, replay
from tests.conftest import closed_port


def test_a_replay_to_no_broker_gives_up_after_its_timeout_naming_the_broker_and_the_shots(
    tmp_path,
):
    address = f"127.0.0.1:{closed_port()}"
    settings = Settings(home=tmp_path, kafka_bootstrap=address, replay_metrics_port=0)
    started = time.monotonic()
    with pytest.raises(DeliveryError) as raised:
        replay(
            settings,
            SyntheticSource(games=1, seed=7),
            pacer=make_pacer(max=True),
            limit=20,
            outcome_delay_s=0.0,
            show_progress=False,
            delivery_timeout_s=1.0,
        )
    message = str(raised.value)
    assert address in message
    assert "messages were not delivered" in message
    assert "parivision up" in message
    # It waited for the broker as long as it was told to, not much longer.
    assert 1.0 <= time.monotonic() - started < 20.0
    # It says which shots to send again: the source's first 20, read here on their own.
    source = iter(SyntheticSource(games=1, seed=7))
    sent = {f"attempt {next(source).shot['shot_id']}" for _ in range(20)}
    undelivered = raised.value.undelivered
    assert sent <= set(undelivered)
    assert "shots not delivered" in message
    named = message.split("not known to be): ")[1].split(" and ")[0].split(", ")
    assert len(named) == 10 and set(named) <= set(undelivered)  # ten named, all in the file
    listed = next((tmp_path / "logs").glob("replay-*-undelivered.txt")).read_text().splitlines()
    assert sorted(listed) == sorted(undelivered)


def test_the_replay_says_once_that_the_broker_is_away_and_when_it_is_back(caplog):
    delivery = Delivery("127.0.0.1:9", timeout_s=300.0)
    down = KafkaError(KafkaError._ALL_BROKERS_DOWN, "1/1 brokers are down")
    with caplog.at_level("WARNING", logger="parivision.replay"):
        delivery.on_error(down)
        delivery.on_error(down)
        delivery.on_delivery(None, None)
        delivery.on_delivery(None, None)
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 2, messages
    assert "127.0.0.1:9 is unreachable" in messages[0]
    assert "127.0.0.1:9 is back" in messages[1]
    delivery.check()  # nothing was given up on


def test_a_fatal_producer_error_stops_the_replay_naming_the_broker():
    delivery = Delivery("127.0.0.1:9", timeout_s=300.0)
    delivery.on_error(KafkaError(KafkaError._FATAL, "out of order sequence", fatal=True))
    with pytest.raises(DeliveryError, match=r"127\.0\.0\.1:9 stopped: out of order sequence"):
        delivery.check()
