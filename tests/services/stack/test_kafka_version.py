"""One Kafka version everywhere: the native jars, the compose image and the MSK line."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from services.core.settings import KAFKA_VERSION, MSK_KAFKA_VERSION, PROJECT_ROOT
from services.stack.kafka_jars import KAFKA_DIR
from tests.compose.conftest import compose_image

pytestmark = pytest.mark.unit

POM = "{http://maven.apache.org/POM/4.0.0}"


def test_the_native_jars_are_the_settings_kafka_version() -> None:
    pom = ET.parse(KAFKA_DIR / "pom.xml").getroot()
    assert pom.findtext(f"{POM}properties/{POM}kafka.version") == KAFKA_VERSION


def test_compose_runs_the_same_kafka_image() -> None:
    assert compose_image("broker") == f"apache/kafka:{KAFKA_VERSION}"


def test_the_msk_line_is_the_same_minor_version_in_kraft_mode() -> None:
    major_minor = ".".join(KAFKA_VERSION.split(".")[:2])
    assert f"{major_minor}.x.kraft" == MSK_KAFKA_VERSION


def test_the_readme_names_the_version_it_runs() -> None:
    readme = (PROJECT_ROOT / "README.md").read_text()
    assert f"apache/kafka:{KAFKA_VERSION}" in readme
    assert not re.search(r"apache/kafka:(?!" + re.escape(KAFKA_VERSION) + r")\d", readme)
