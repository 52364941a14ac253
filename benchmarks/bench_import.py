"""Cost of ``import billkit`` in a fresh interpreter, as a ratio to importing what it is built on.

Times ``python -c "import billkit"`` against the floor ``python -c "import httpx; from pydantic import BaseModel"``
(each a fresh subprocess of this interpreter, so interpreter start-up is in both), interleaved, ``ROUNDS`` rounds
each, median; ``python -c "pass"`` runs in the same rounds to show how much of the floor is start-up.

Every subprocess runs with a private, warmed bytecode cache (``PYTHONPYCACHEPREFIX`` in a temporary directory,
``PYTHONDONTWRITEBYTECODE`` unset), so both sides are measured as an installed package is imported: from
``.pyc`` files. Without it, a checkout without ``__pycache__`` (or an environment that sets
``PYTHONDONTWRITEBYTECODE``) would compile billkit's sources on every run and charge that to billkit alone,
since the floor's packages come with their ``.pyc`` from pip. Nothing is written outside the temporary directory.
``billkit``'s public names load on first use (PEP 562, ``billkit/__init__.py``), so ``import billkit`` itself
imports neither httpx nor pydantic; the same rounds also time ``import billkit; billkit.Client; billkit.Bill``
(its first use), reported beside the target so the cost a program pays once it uses billkit stays in sight.
Prints:

* import billkit / floor      (target <= 1.15)
* first use / floor           (no target)

and, from one ``python -X importtime -c "import httpx; from pydantic import BaseModel; import billkit"``, the
modules billkit adds on top of the floor with their share of what billkit adds (self time, grouped by the module
billkit imports them from), so a miss says where to look.

Run: ``make bench`` (or ``.venv/bin/python benchmarks/bench_import.py [rounds]``).
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict

ROUNDS = 15
TARGET = 1.15
CODE = {
    "billkit": "import billkit",
    "floor": "import httpx; from pydantic import BaseModel",
    "bare": "pass",
    # billkit's public names load on first use (PEP 562): what a program pays once it names a client and a bill
    "first use": "import billkit; billkit.Client; billkit.Bill",
}


ENV: dict[str, str] = {}  # set by main(): the subprocesses' environment (with the private bytecode cache)


def run_once(code: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, env=ENV)
    return time.perf_counter() - start


def measure(rounds: int) -> dict[str, float]:
    for code in CODE.values():  # warm up: writes the .pyc files, fills the OS file cache
        run_once(code)
    names = list(CODE)
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            times[name].append(run_once(CODE[name]))
    return {name: statistics.median(t) for name, t in times.items()}


_LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")


def added_modules(runs: int = 3) -> list[tuple[str, float]]:
    """What ``import billkit`` adds once the floor is imported: (label, share of billkit's import time).

    Self times from ``-X importtime`` (summed over ``runs`` runs), grouped by top-level package; a third-party
    package is labelled with the billkit module whose import pulled it in (``anyio <- billkit.client``),
    billkit's own modules by name.
    """
    self_by: dict[str, int] = defaultdict(int)
    total = 0
    for _ in range(runs):
        total += _importtime(self_by)
    return sorted(((k, v / max(1, total)) for k, v in self_by.items()), key=lambda x: -x[1])


def _importtime(self_by: dict[str, int]) -> int:
    """Add one run's self times to ``self_by``; return billkit's cumulative import time (microseconds): everything
    imported after the floor, by ``import billkit`` and by the first use of its names."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", f"{CODE['floor']}; {CODE['first use']}"],
                          check=True, capture_output=True, text=True, env=ENV)  # fmt: skip
    rows = []
    for line in done.stderr.splitlines():
        m = _LINE.match(line)
        if m:
            rows.append((int(m[1]), int(m[2]), len(m[3]) // 2, m[4]))
    floor_end = max(i for i, r in enumerate(rows) if r[2] == 0 and r[3].split(".")[0] in ("httpx", "pydantic"))
    start, total = floor_end + 1, 0
    ancestors: list[tuple[int, str]] = []  # importtime lists children before their parent: walk backwards
    for own, cum, depth, name in reversed(rows[start:]):
        if depth == 0:
            total += cum
        while ancestors and ancestors[-1][0] >= depth:
            ancestors.pop()
        if name.startswith("billkit"):
            label = name
        else:
            via = next((a for _, a in reversed(ancestors) if a.startswith("billkit")), "billkit")
            label = f"{name.split('.')[0]} <- {via}"
        self_by[label] += own
        ancestors.append((depth, name))
    return total


def main(rounds: int = ROUNDS) -> None:
    with tempfile.TemporaryDirectory(prefix="billkit-bench-pyc-") as cache:
        ENV.clear()
        ENV.update({k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"})
        ENV["PYTHONPYCACHEPREFIX"] = cache
        report(rounds)


def report(rounds: int) -> None:
    t = measure(rounds)
    ratio = t["billkit"] / t["floor"]
    print(f"import: fresh interpreter per run (bytecode cached), {rounds} interleaved rounds, median")
    print(f"ratio floor (import httpx + pydantic.BaseModel) / bare interpreter = {t['floor'] / t['bare']:.2f}x")
    print(f"ratio import billkit / floor                                      = {ratio:.2f}x  (target <= {TARGET})")
    added = (t["first use"] - t["floor"]) / max(1e-9, t["floor"] - t["bare"])
    print(f"ratio what billkit's first use adds / what httpx + pydantic add to a bare start = {added:.2f}x")
    first = t["first use"] / t["floor"]
    print(
        f"ratio first use (import billkit; billkit.Client; billkit.Bill) / floor = {first:.2f}x  (no target: the "
        "names load when first used, so this is what a program that uses billkit pays)"
    )
    print("what billkit's first use adds over the floor (-X importtime self time, share; 'pkg <- module': via):")
    modules = added_modules()
    for name, share in modules[:12]:
        print(f"  {share:6.1%}  {name}")
    rest = sum(share for _, share in modules[12:])
    print(f"  {rest:6.1%}  {len(modules) - 12} other modules")
    verdict = "MET" if ratio <= TARGET else "MISSED"
    print(f"target import/floor <= {TARGET}x: {verdict} ({ratio:.2f}x)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else ROUNDS)
