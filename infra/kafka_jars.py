"""The local Kafka's jars: fetched from Maven Central once (``infra/kafka/pom.xml``, with ``mvn``)
and cached per version under ``~/.cache/parivision`` (or ``settings.kafka_cache``).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from infra.process import ServiceError
from parivision.settings import Settings

if TYPE_CHECKING:
    from rich.console import Console

SERVICE = "Kafka"
POM = Path(__file__).with_name("kafka") / "pom.xml"


def jar_dir(settings: Settings) -> Path:
    """Where the jars of ``settings.kafka_version`` are cached."""
    root = settings.kafka_cache or Path.home() / ".cache" / "parivision"
    return root.expanduser() / f"kafka-{settings.kafka_version}" / "libs"


def _has_jars(libs: Path, version: str) -> bool:
    return (libs / f"kafka_2.13-{version}.jar").is_file() and (
        libs / f"kafka-tools-{version}.jar"
    ).is_file()


def ensure_jars(settings: Settings, console: Console | None = None) -> Path:
    """Fetch the broker's jars with Maven unless they are cached; return the jar folder.

    The jars land in a temporary folder that is renamed into place only once Maven succeeded,
    so an interrupted fetch is never mistaken for a complete one.
    """
    version, libs = settings.kafka_version, jar_dir(settings)
    if _has_jars(libs, version):
        return libs
    address = settings.local_kafka_bootstrap()
    mvn = shutil.which("mvn")
    if mvn is None:
        raise ServiceError(
            SERVICE,
            address,
            f"the broker's jars are not cached in {libs} and Maven (`mvn`) is not installed "
            "to fetch them",
            "install Maven and Java 17 (Debian/Ubuntu: apt-get install maven openjdk-17-jre), "
            "or set PARIVISION_KAFKA_BOOTSTRAP to a Kafka broker you already run",
        )
    if not POM.is_file():
        raise ServiceError(
            SERVICE,
            address,
            f"{POM} is missing from this installation",
            "reinstall parivision from its source tree",
        )
    libs.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".fetch-", dir=libs.parent))
    try:
        shutil.copyfile(POM, work / "pom.xml")  # Maven writes next to its pom: not in the repo
        fetched = work / "libs"
        argv = [
            mvn,
            "-q",
            "-B",
            "dependency:copy-dependencies",
            f"-DoutputDirectory={fetched}",
            "-DincludeScope=runtime",
            f"-Dkafka.version={version}",
        ]
        if console is not None:
            console.print(
                f"[dim]Fetching Apache Kafka {version} jars with Maven (once) into {libs} …[/dim]"
            )
        try:
            done = subprocess.run(argv, cwd=work, capture_output=True, text=True, timeout=900)
        except subprocess.TimeoutExpired:
            raise ServiceError(
                SERVICE,
                address,
                "fetching the broker's jars with Maven took more than 15 minutes",
                _MAVEN_HINT,
            ) from None
        if done.returncode != 0 or not _has_jars(fetched, version):
            output = (done.stdout + done.stderr).strip().splitlines()[-15:]
            raise ServiceError(
                SERVICE,
                address,
                f"`{' '.join(argv[1:4])}` failed (exit {done.returncode}) while fetching Apache "
                f"Kafka {version}:\n" + "\n".join("    " + line for line in output),
                _MAVEN_HINT,
            )
        try:
            fetched.rename(libs)
        except OSError:
            if not _has_jars(libs, version):  # lost a race to another fetch: theirs is fine
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return libs


_MAVEN_HINT = (
    "check that Maven Central (repo.maven.apache.org) is reachable, or configure a mirror or proxy "
    "in ~/.m2/settings.xml; check that PARIVISION_KAFKA_VERSION names a released version; "
    "or set PARIVISION_KAFKA_BOOTSTRAP to a broker you already run"
)
