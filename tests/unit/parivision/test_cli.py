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


def test_status_names_what_the_deployment_owns_and_every_deployment_s_metrics(tmp_path):
    from infra.targets import register
    from parivision.settings import Settings

    home = tmp_path / "home"
    for name, port in (("west", 9201), ("east", 9301)):
        register(Settings(_env_file=None, home=home, deployment=name), "stream", port)
    env = {
        "PARIVISION_HOME": str(home),
        "PARIVISION_DEPLOYMENT": "west",
        "PARIVISION_PROMETHEUS_PORT": "0",
        "PARIVISION_ALERTMANAGER_PORT": "0",
    }

    out = CliRunner().invoke(app, ["status"], env=env).output

    assert "deployment west: topics west.*, database parivision-west" in out
    assert "model parivision-shot-west: this deployment's own" in out
    assert "metrics of west (this one): stream@127.0.0.1:9201" in out
    assert "metrics of east: stream@127.0.0.1:9301" in out
    shared = CliRunner().invoke(app, ["status"], env={**env, "PARIVISION_MODEL_NAME": "one"})
    assert "model one: SHARED on purpose" in shared.output
