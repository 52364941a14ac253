"""A durable batch from a file, through the Python API (the ``billkit`` command does the same from a shell).

For each provider, the example file under examples/data/ is read row by row (a bad row is reported with its row
and column and never sent), journaled (each bill keyed for its provider before anything is sent), run to the end,
and exported. Run it twice on the same journal and the second run sends nothing: every item is already done.

By default it runs on the built-in sandboxes (their state kept next to each journal). With a provider's
credentials in the environment (FACTURAPI_API_KEY; ACCEPTEASY_KEY_NAME + ACCEPTEASY_KEY; BILL_USERNAME +
BILL_PASSWORD + BILL_ORGANIZATION_ID + BILL_DEV_KEY) that provider runs against its real API.

Run: ``.venv/bin/python examples/batch_from_file.py [journal directory]``.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import billkit.batch
from billkit.batchfile import read_bills
from billkit.journal import Journal

DATA = Path(__file__).with_name("data")
LIVE = {
    "accepteasy": ("ACCEPTEASY_KEY_NAME", "ACCEPTEASY_KEY"),
    "billcom": ("BILL_USERNAME", "BILL_PASSWORD", "BILL_ORGANIZATION_ID", "BILL_DEV_KEY"),
    "facturapi": ("FACTURAPI_API_KEY",),
}


def main(where: Path) -> None:
    for provider in ("accepteasy", "billcom", "facturapi"):
        live = all(os.environ.get(name) for name in LIVE[provider])
        rows = read_bills(DATA / f"{provider}.csv", provider=provider)
        for row in rows:
            for problem in row.errors:
                print(f"  {provider}.csv: {problem}")
        journal = where / f"{provider}.journal"
        if not journal.exists():
            entries = [(r.row, r.bill, "; ".join(map(str, r.errors)) or None) for r in rows]
            billkit.batch.create(journal, entries, provider=provider, source=f"{provider}.csv").close()
        summary = billkit.batch.run(journal, sandbox=not live)
        assert summary.finished, summary.counts
        again = billkit.batch.run(journal, sandbox=not live)  # resuming a finished batch sends nothing
        mode = "live API" if live else "sandbox"
        print(f"{provider:<10} ({mode}): {summary.counts['done']} done, {summary.counts['failed']} failed, "
              f"{summary.counts['unknown']} unknown in {summary.requests} requests; "
              f"a second run made {again.requests}")  # fmt: skip
        with Journal(journal) as j:
            first = next(j.rows())
        print(f"           row {first['row']}: {first['state']} as {first['provider_id']} (key {first['key']})")


if __name__ == "__main__":
    if len(sys.argv) > 1:
        main(Path(sys.argv[1]))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            main(Path(tmp))
