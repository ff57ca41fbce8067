"""Apache Kafka from the Maven Central jars in ``.jars/kafka``: the JVM command lines.

The broker and the command-line tools run as ``java -cp '.jars/kafka/*' <main class>``, the
way the distribution's ``kafka-run-class.sh`` runs them, with its JVM flags.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from services.core.errors import PrerequisiteError
from services.core.settings import KAFKA_VERSION, PROJECT_ROOT, Settings

KAFKA_DIR = PROJECT_ROOT / "services" / "kafka"
BROKER_LOG4J = KAFKA_DIR / "log4j2-broker.properties"
TOOLS_LOG4J = KAFKA_DIR / "log4j2-tools.properties"

BROKER_MAIN = "kafka.Kafka"
STORAGE_TOOL = "kafka.tools.StorageTool"
# `pinpipe kafka <name>`: the distribution's kafka-<name>.sh, by main class.
TOOLS: dict[str, str] = {
    "topics": "org.apache.kafka.tools.TopicCommand",
    "console-consumer": "org.apache.kafka.tools.consumer.ConsoleConsumer",
    "console-producer": "org.apache.kafka.tools.ConsoleProducer",
    "consumer-groups": "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
    "broker-api-versions": "org.apache.kafka.tools.BrokerApiVersionsCommand",
    "metadata-quorum": "org.apache.kafka.tools.MetadataQuorumCommand",
}
# kafka-run-class.sh's performance flags (JDK 17 already picks G1; the others differ from
# its defaults) and kafka-server-start.sh's headless mode.
JVM_PERFORMANCE = (
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent",
    "-Djava.awt.headless=true",
)
TOOLS_HEAP = "256m"


def java_binary() -> str:
    """``$JAVA_HOME/bin/java``, else ``java`` on the PATH."""
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").exists():
        return str(Path(home) / "bin" / "java")
    found = shutil.which("java")
    if found is None:
        raise PrerequisiteError("Java is not installed: Kafka needs a JDK 17 or newer on PATH.")
    return found


def classpath(settings: Settings) -> str:
    """The jar folder as a class path; PrerequisiteError when `make setup` has not filled it."""
    jars = settings.kafka_jars
    if not (jars / f"kafka_2.13-{KAFKA_VERSION}.jar").exists():
        raise PrerequisiteError(
            f"Kafka {KAFKA_VERSION}'s jars are not in {jars}: run `make setup` "
            "(it fetches them from Maven Central once)."
        )
    return f"{jars}/*"


def java_command(
    settings: Settings,
    main: str,
    args: Sequence[str],
    *,
    heap: str,
    log4j: Path,
    extra_jvm: Sequence[str] = (),
) -> list[str]:
    """``java <flags> -cp .jars/kafka/* <main> <args>``."""
    return [
        java_binary(),
        f"-Xmx{heap}",
        *JVM_PERFORMANCE,
        f"-Dlog4j2.configurationFile={log4j}",
        *extra_jvm,
        "-cp",
        classpath(settings),
        main,
        *args,
    ]


def tool_command(settings: Settings, tool: str, args: Sequence[str]) -> list[str]:
    """A Kafka command-line tool against the stack's broker (unless ``args`` name one)."""
    if tool not in TOOLS:
        raise PrerequisiteError(f"unknown Kafka tool {tool!r}: choose from {', '.join(TOOLS)}")
    given = any(a == "--bootstrap-server" or a.startswith("--bootstrap-server=") for a in args)
    target = [] if given else ["--bootstrap-server", settings.kafka_bootstrap_servers]
    return java_command(settings, TOOLS[tool], [*target, *args], heap=TOOLS_HEAP, log4j=TOOLS_LOG4J)
