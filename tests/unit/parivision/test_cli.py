import pytest
from typer.testing import CliRunner

from parivision.cli import app

COMMANDS = sorted(command.name for command in app.registered_commands)


def test_the_cli_has_the_commands_the_readme_names():
    assert {"up", "down", "status", "train", "replay", "stream", "sink", "demo"} <= set(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_explains_itself(command):
    result = CliRunner().invoke(app, [command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def test_replay_refuses_two_sources_before_touching_any_service():
    result = CliRunner().invoke(app, ["replay", "--data", "x.csv", "--synthetic"])
    assert result.exit_code == 1


def test_up_refuses_brokers_for_an_external_kafka_before_touching_any_service(monkeypatch):
    monkeypatch.setenv("PARIVISION_KAFKA_BOOTSTRAP", "kafka.example:9092")
    result = CliRunner().invoke(app, ["up", "--brokers", "3"])
    assert result.exit_code == 1
    assert "PARIVISION_KAFKA_BOOTSTRAP" in result.output and "kafka.example:9092" in result.output


@pytest.mark.parametrize("brokers", ["0", "10"])
def test_up_takes_one_to_nine_brokers(brokers):
    result = CliRunner().invoke(app, ["up", "--brokers", brokers])
    assert result.exit_code == 2 and "--brokers" in result.output
