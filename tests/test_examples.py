"""Every example runs on the sandboxes and exits 0: an example that does not run is a bug."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted(p for p in (ROOT / "examples").glob("*.py") if not p.stem.endswith("_common"))
CREDENTIAL_VARS = ("KEY", "PASSWORD", "USERNAME", "ORGANIZATION_ID", "DEV_KEY", "KEY_NAME", "BASE_URL")


def sandbox_env() -> dict[str, str]:
    """The environment without any provider credential, so every example takes the sandbox path."""
    return {
        k: v
        for k, v in os.environ.items()
        if not (k.startswith(("FACTURAPI_", "ACCEPTEASY_", "BILL_")) and k.endswith(CREDENTIAL_VARS))
    }


def test_there_are_examples_for_every_provider_and_the_demo() -> None:
    names = {p.stem for p in EXAMPLES}
    assert {"demo", "resume_in_worker"} <= names
    shipped = sorted(p.name for p in (ROOT / "src" / "billkit" / "providers").iterdir() if (p / "client.py").exists())
    assert shipped == ["accepteasy", "billcom", "facturapi"]
    for provider in shipped:  # every adapter billkit ships has its examples
        assert any(n.startswith(provider) for n in names), provider


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_runs_on_the_sandbox(path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(path)], cwd=path.parent, env=sandbox_env(), capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, f"{path.name} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    assert done.stdout.strip(), f"{path.name} printed nothing"
