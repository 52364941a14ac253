"""Package boundaries: what a plain ``pip install billkit`` gets, and what importing billkit loads.

``make plain-install`` (part of ``make test``) checks a real fresh install; these tests check the same promises
in the project's own environment, where pytest and the dev extras are present, by hiding them.
"""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import metadata

HIDE = "import sys\nfor name in ('pytest', '_pytest', 'respx', 'hypothesis'):\n    sys.modules[name] = None\n"


def run(code: str) -> dict[str, object]:
    """Run ``code`` in a fresh interpreter with the test tools hidden; it prints a JSON object."""
    out = subprocess.run([sys.executable, "-c", HIDE + code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def test_billkit_testing_works_without_pytest() -> None:
    result = run(
        "import json, anyio, billkit, billkit.testing as t\n"
        "box = t.sandbox('accepteasy', clock=t.VirtualClock())\n"
        "async def main():\n"
        "    async with billkit.AsyncClient('accepteasy', sandbox=box) as c:\n"
        "        b = billkit.Bill(reference='P-1', description='x', total=billkit.Money('1.00', 'EUR'))\n"
        "        return (await c.submit_and_wait(b)).status.value\n"
        "status = anyio.run(main)\n"
        "print(json.dumps({'status': status, 'pytest': bool(sys.modules.get('pytest'))}))"
    )
    assert result == {"status": "open", "pytest": False}


def test_the_pytest_entry_point_names_the_plugin_module() -> None:
    points = [e for e in metadata.entry_points(group="pytest11") if e.name == "billkit"]
    assert [e.value for e in points] == ["billkit.testing.plugin"]
    plugin = points[0].load()
    assert {"billkit_clock", "billkit_sandbox"} <= set(dir(plugin))


def test_importing_billkit_loads_no_adapter_sandbox_or_optional_tool() -> None:
    result = run(
        "import json, billkit\n"
        "before = sorted(m for m in sys.modules if m.startswith(('billkit.', 'anyio', 'trio', 'typer', 'rich',"
        " 'opentelemetry')))\n"
        "client = billkit.Client('accepteasy', key_name='k', key='s')\n"
        "after = sorted(m for m in sys.modules if m.startswith('billkit.'))\n"
        "client.close()\n"
        "print(json.dumps({'before': before, 'after': after}))"
    )
    before, after = result["before"], result["after"]
    assert isinstance(before, list) and isinstance(after, list)
    assert not [m for m in before if m.startswith(("billkit.providers", "billkit.testing", "anyio", "trio"))]
    assert not [m for m in before if m.startswith("opentelemetry")], "billkit.tracing imports it only once set up"
    assert "billkit.providers.accepteasy.client" in after
    assert not [m for m in after if m.endswith(".sandbox") or m.startswith("billkit.testing")], after


def test_billkit_s_names_load_on_first_use_and_each_one_resolves() -> None:
    result = run(
        "import json, billkit\n"
        "heavy = sorted(m for m in ('httpx', 'pydantic', 'billkit.models', 'billkit.client') if m in sys.modules)\n"
        "resolved = {name: getattr(billkit, name).__module__ if hasattr(getattr(billkit, name), '__module__') "
        "else 'value' for name in billkit.__all__}\n"
        "missing = [n for n in billkit.__all__ if n not in dir(billkit)]\n"
        "try:\n    billkit.Nope\n    unknown = 'no error'\nexcept AttributeError as exc:\n    unknown = str(exc)\n"
        "print(json.dumps({'heavy': heavy, 'resolved': resolved, 'missing': missing, 'unknown': unknown}))"
    )
    assert result["heavy"] == [], "import billkit alone loads neither httpx, pydantic nor billkit's models"
    resolved = result["resolved"]
    assert isinstance(resolved, dict)
    import billkit

    assert set(resolved) == set(billkit.__all__)
    assert resolved["Bill"] == "billkit.models" and resolved["Client"] == "billkit.client"
    assert result["missing"] == [] and "has no attribute 'Nope'" in str(result["unknown"])
