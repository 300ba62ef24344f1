"""Java services run from plain jars that Maven resolves out of Maven Central, once."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from flightpipe.stack.errors import StackError


def require_java(service: str, external_setting: str) -> None:
    for tool, package in (("java", "openjdk-17-jre-headless"), ("mvn", "maven")):
        if not shutil.which(tool):
            raise StackError(
                f"`{tool}` was not found; the local {service} needs Java 17+ and Maven. "
                f"Install it (apt-get install -y {package}) or point {external_setting} "
                f"at an existing {service}."
            )


def copy_dependencies(pom: Path, libs: Path, what: str) -> None:
    """Every jar ``pom`` depends on, in ``libs``; nothing to do when the pom is unchanged."""
    marker = libs / ".complete"
    if marker.exists() and marker.read_text() == pom.read_text():
        return
    print(f"Resolving {what} jars from Maven Central (first start only) ...", flush=True)
    if libs.exists():
        shutil.rmtree(libs)
    libs.mkdir(parents=True)
    result = subprocess.run(
        ["mvn", "-q", "-B", "-f", str(pom), "dependency:copy-dependencies",
         f"-DoutputDirectory={libs}"],
        capture_output=True,
        text=True,
    )  # fmt: skip
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
        raise StackError(f"Maven could not resolve the {what} jars:\n{tail}")
    marker.write_text(pom.read_text())
