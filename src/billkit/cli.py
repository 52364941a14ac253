"""The ``billkit`` command: run a file of bills as a durable batch, resume it, see where it stands, export it.

Installed with the ``cli`` extra (``pip install 'billkit[cli]'``: typer and rich); ``import billkit`` never imports
this module. The guide is docs/cli.md.

Exit codes: 0 every item done; 1 some items failed (or rows were invalid), none left unknown; 2 the command or the
file was refused (nothing sent); 3 items left unknown or unfinished (resume or retry them); 130 interrupted (the
journal is consistent: ``billkit resume J`` goes on).
"""

from __future__ import annotations

import asyncio
import csv
import json
import sys
import time
from collections.abc import Mapping
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

try:
    import typer
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn, TimeRemainingColumn
    from rich.table import Table
except ImportError as exc:  # pragma: no cover - exercised by the plain-install check
    raise SystemExit(
        f"the billkit command needs the cli extra: pip install 'billkit[cli]' ({exc.name} is missing)"
    ) from None

import billkit.batch
from billkit.batchfile import FileError, read_bills
from billkit.errors import BillkitError, ConfigurationError
from billkit.journal import Journal

__all__ = ["app", "main"]

EXIT_DONE, EXIT_FAILED, EXIT_REFUSED, EXIT_UNFINISHED, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
#: what Ctrl-C raises out of ``anyio.run``: KeyboardInterrupt, or on Python 3.10 (no ``asyncio.Runner`` there to turn
#: the cancelled main task back into one) the main task's CancelledError
_INTERRUPTED: tuple[type[BaseException], ...] = (
    (KeyboardInterrupt,) if sys.version_info >= (3, 11) else (KeyboardInterrupt, asyncio.CancelledError)
)
PROVIDERS = ("accepteasy", "billcom", "facturapi")

app = typer.Typer(
    name="billkit",
    help="Create bills from a file, exactly once, through a journal that survives restarts.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True, soft_wrap=True)  # an error line is one line, whatever the width
out = Console(soft_wrap=True)


class Format(str, Enum):
    csv = "csv"
    jsonl = "jsonl"


class Engine(str, Enum):
    journal = "journal"
    dbos = "dbos"


# -- progress ----------------------------------------------------------------------------------------------------
class _Report:
    """A live bar on a terminal; a plain line at most every ``every`` seconds otherwise."""

    def __init__(self, total: int, ended: int, *, every: float = 2.0) -> None:
        self.total = total
        self.every = every
        self.live = err.is_terminal
        self.started = time.monotonic()
        self.last = 0.0
        self.first_done = ended
        self.progress: Progress | None = None
        self.task: TaskID | None = None

    def __enter__(self) -> _Report:
        if self.live:
            self.progress = Progress(
                TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                console=err, transient=False,
            )  # fmt: skip
            self.progress.start()
            self.task = self.progress.add_task("starting", total=self.total, completed=self.first_done, rate="")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()

    def __call__(self, counts: Mapping[str, int]) -> None:
        ended = sum(counts.get(s, 0) for s in ("done", "failed", "unknown", "invalid"))
        elapsed = max(time.monotonic() - self.started, 1e-9)
        rate = (ended - self.first_done) / elapsed
        sent = counts.get("submitted", 0) + counts.get("sending", 0)
        failed = counts.get("failed", 0) + counts.get("invalid", 0)
        line = f"submitted {sent}  done {counts.get('done', 0)}  failed {failed}  unknown {counts.get('unknown', 0)}"
        if self.progress is not None and self.task is not None:
            self.progress.update(self.task, completed=ended, description=line, rate=f"{rate:.0f}/s")
            return
        now = time.monotonic()
        if now - self.last >= self.every or ended == self.total:
            self.last = now
            left = self.total - ended
            eta = f"{left / rate:.0f}s" if rate > 0 else "?"
            err.print(f"{ended}/{self.total}  {line}  {rate:.0f}/s  ETA {eta}", highlight=False)


# -- running -----------------------------------------------------------------------------------------------------
def _read(file: Path, provider: str, all_or_nothing: bool, file_format: Format | None) -> tuple[list[Any], list[Any]]:
    """The file's rows and its bad ones (each reported with its row and field); exits when it cannot be read, or
    when a row is bad and ``all_or_nothing``."""
    try:
        rows = read_bills(file, provider=provider, format=file_format.value if file_format else None)
    except (FileError, ConfigurationError) as exc:
        err.print(f"error: {exc.message}", highlight=False)
        raise typer.Exit(EXIT_REFUSED) from None
    bad = [r for r in rows if r.errors]
    for parsed in bad[:50]:
        for problem in parsed.errors:
            err.print(f"{file}: {problem}", highlight=False)
    if len(bad) > 50:
        err.print(f"... and {len(bad) - 50} more bad rows", highlight=False)
    if bad and all_or_nothing:
        err.print(f"{len(bad)} bad rows: nothing sent (--all-or-nothing)", highlight=False)
        raise typer.Exit(EXIT_REFUSED)
    return rows, bad


def _dbos(database: str | None) -> Any:
    if not database:
        err.print("error: --engine dbos needs --database (postgresql://... or sqlite:///...)", highlight=False)
        raise typer.Exit(EXIT_REFUSED)
    from billkit.contrib.dbos import Engine as DbosEngine

    return DbosEngine(database)


def _run_dbos(file: Path, provider: str, database: str | None, batch: str | None, base_url: str | None,
              all_or_nothing: bool, file_format: Format | None, wait: bool) -> int:  # fmt: skip
    """Enqueue the file's good rows as a DBOS batch; wait (with progress) unless told not to."""
    engine = _dbos(database)
    rows, bad = _read(file, provider, all_or_nothing, file_format)
    good = [r.bill for r in rows if not r.errors]
    batch = engine.submit(good, provider=provider, batch=batch, base_url=base_url)
    err.print(f"{len(good)} bills enqueued as batch {batch}" + (f" ({len(bad)} bad rows, not sent)" if bad else "")
              + "; workers: billkit worker --database ...", highlight=False)  # fmt: skip
    out.print(batch, highlight=False)
    if not wait:
        return EXIT_DONE
    summary = engine.summary(batch)
    with _Report(summary.total, 0) as report:
        try:
            summary = engine.wait(batch, on_progress=lambda s: report(_shown(s.counts)))
        except KeyboardInterrupt:
            err.print(f"\nstopped waiting; the workers go on. See: billkit status --database ... --batch {batch}",
                      highlight=False)  # fmt: skip
            return EXIT_INTERRUPTED
    counts = dict(summary.counts)
    if bad:
        counts["invalid"] = len(bad)
    return _verdict(Path(f"batch {batch}"), _shown(counts))


def _shown(counts: Mapping[str, int]) -> dict[str, int]:
    """A DBOS batch's counts in the journal's words (waiting: submitted)."""
    return {("submitted" if k == "waiting" else k): v for k, v in counts.items()}


@app.command()
def worker(
    database: Annotated[str, typer.Option(help="the DBOS database: postgresql://... or sqlite:///...")],
    provider: Annotated[list[str] | None, typer.Option("--provider", "-p", help="serve only these (repeat)")] = None,
    per_worker: Annotated[int, typer.Option(help="creates this worker runs at once per provider")] = 8,
    lease: Annotated[float, typer.Option(help="seconds without a heartbeat before a worker is taken for dead")] = 10.0,
) -> None:
    """Run a DBOS worker for billkit batches until Ctrl-C (credentials from the environment)."""
    for name in provider or ():
        if name not in PROVIDERS:
            err.print(f"error: unknown provider {name!r}: choose {', '.join(PROVIDERS)}", highlight=False)
            raise typer.Exit(EXIT_REFUSED)
    from billkit.contrib.dbos import Engine as DbosEngine

    engine = DbosEngine(database, per_worker=per_worker, lease=lease)
    engine.launch(provider or None)
    err.print(f"billkit worker {engine.executor} serving {', '.join(provider or PROVIDERS)}", highlight=False)
    engine.work(provider or None)


# -- the journal engine ---------------------------------------------------------------------------------------------
def _run(journal_path: Path, *, workers: int | None, chunk: int | None, settle: float | None,
         journal: Journal | None = None) -> int:  # fmt: skip
    with journal or Journal(journal_path) as j:
        return _run_open(j, workers=workers, chunk=chunk, settle=settle)


def _run_open(journal: Journal, *, workers: int | None, chunk: int | None, settle: float | None) -> int:
    journal_path = journal.path
    options, total, counts = journal.options, journal.total(), journal.counts()
    report = _Report(total, sum(counts[s] for s in ("done", "failed", "unknown", "invalid")))
    try:
        with report:
            summary = billkit.batch.run(journal, sandbox=bool(options.get("sandbox")),
                                        base_url=options.get("base_url"), workers=workers, chunk=chunk,
                                        settle=settle, on_progress=report)  # fmt: skip
    except _INTERRUPTED:
        err.print(f"\nstopped. Nothing is lost: resume with  billkit resume {journal_path}", highlight=False)
        return EXIT_INTERRUPTED
    except BillkitError as exc:
        err.print(f"error: {exc}", highlight=False)
        return EXIT_UNFINISHED
    return _verdict(journal_path, summary.counts)


def _verdict(journal_path: Path, counts: Mapping[str, int]) -> int:
    shown = ", ".join(f"{n} {state}" for state, n in counts.items() if n)
    err.print(f"{journal_path}: {shown}", highlight=False)
    if counts.get("unknown", 0) or any(counts.get(s, 0) for s in ("pending", "sending", "submitted")):
        err.print(f"items are left to finish: billkit resume {journal_path} (or billkit retry-failed)", highlight=False)
        return EXIT_UNFINISHED
    if counts.get("failed", 0) or counts.get("invalid", 0):
        err.print(f"see the failures: billkit status {journal_path}", highlight=False)
        return EXIT_FAILED
    return EXIT_DONE


@app.command()
def run(
    file: Annotated[Path, typer.Argument(help="CSV or JSON Lines, one bill per row (columns: docs/cli.md)")],
    provider: Annotated[str, typer.Option("--provider", "-p", help="accepteasy, billcom or facturapi")],
    sandbox: Annotated[bool, typer.Option(help="run on the built-in sandbox (state kept by the journal)")] = False,
    journal: Annotated[Path | None, typer.Option(help="the journal file (default: FILE.journal)")] = None,
    base_url: Annotated[str | None, typer.Option(help="the provider's base URL (credentials: environment)")] = None,
    all_or_nothing: Annotated[bool, typer.Option(help="send nothing if any row is bad")] = False,
    file_format: Annotated[Format | None, typer.Option("--format", help="the file's format (default: by name)")] = None,
    workers: Annotated[int | None, typer.Option(help="submissions in flight at once")] = None,
    chunk: Annotated[int | None, typer.Option(help="items per submission")] = None,
    settle: Annotated[float | None, typer.Option(help="seconds before a lost send is proven absent")] = None,
    engine: Annotated[Engine, typer.Option(help="journal (this machine) or dbos (workers: billkit worker)")] = (
        Engine.journal
    ),
    database: Annotated[str | None, typer.Option(help="--engine dbos: postgresql://... or sqlite:///...")] = None,
    batch: Annotated[str | None, typer.Option(help="--engine dbos: the batch id (default: a new one)")] = None,
    wait: Annotated[bool, typer.Option(help="--engine dbos: wait until every item is finished")] = True,
) -> None:  # fmt: skip
    """Submit every row of FILE and wait until each one is done; the journal makes it resumable."""
    if provider not in PROVIDERS:
        err.print(f"error: unknown provider {provider!r}: choose {', '.join(PROVIDERS)}", highlight=False)
        raise typer.Exit(EXIT_REFUSED)
    if engine is Engine.dbos:
        raise typer.Exit(_run_dbos(file, provider, database, batch, base_url, all_or_nothing, file_format, wait))
    target = journal or file.with_name(file.name + ".journal")
    if target.exists():
        err.print(f"error: {target} exists: resume it with  billkit resume {target}  (or give --journal)",
                  highlight=False)  # fmt: skip
        raise typer.Exit(EXIT_REFUSED)
    rows, bad = _read(file, provider, all_or_nothing, file_format)
    entries = [(r.row, r.bill, "; ".join(str(e) for e in r.errors) or None) for r in rows]
    options: dict[str, Any] = {"sandbox": sandbox, "base_url": base_url}
    opened = billkit.batch.create(target, entries, provider=provider, source=str(file), options=options)
    err.print(f"{len(rows)} rows journaled in {target}" + (f" ({len(bad)} bad, not sent)" if bad else ""),
              highlight=False)  # fmt: skip
    raise typer.Exit(_run(target, workers=workers, chunk=chunk, settle=settle, journal=opened))


@app.command()
def resume(
    journal: Annotated[Path, typer.Argument(help="the journal of an earlier run")],
    workers: Annotated[int | None, typer.Option(help="submissions in flight at once")] = None,
    chunk: Annotated[int | None, typer.Option(help="items per submission")] = None,
    settle: Annotated[float | None, typer.Option(help="seconds before a lost send is proven absent")] = None,
) -> None:
    """Go on with a batch that was stopped or killed: what was sent is looked up, never sent twice."""
    _exists(journal)
    raise typer.Exit(_run(journal, workers=workers, chunk=chunk, settle=settle))


@app.command("retry-failed")
def retry_failed(
    journal: Annotated[Path, typer.Argument(help="the journal of an earlier run")],
    workers: Annotated[int | None, typer.Option(help="submissions in flight at once")] = None,
    settle: Annotated[float | None, typer.Option(help="seconds before a lost send is proven absent")] = None,
) -> None:
    """Send the failed and unknown items again (each is looked up first, with the same key)."""
    _exists(journal)
    with Journal(journal) as j:
        reopened = j.reopen(["failed", "unknown"])
    err.print(f"{reopened} items reopened", highlight=False)
    raise typer.Exit(_run(journal, workers=workers, chunk=None, settle=settle))


@app.command()
def status(
    journal: Annotated[Path | None, typer.Argument(help="the journal of a run")] = None,
    database: Annotated[str | None, typer.Option(help="a DBOS batch's database (with --batch)")] = None,
    batch: Annotated[str | None, typer.Option(help="a DBOS batch's id")] = None,
) -> None:
    """Items by state, and the failures grouped by error with their rows."""
    if journal is None:
        engine = _dbos(database)
        summary = engine.summary(batch or "")
        table = Table(title=f"batch {batch}")
        table.add_column("state")
        table.add_column("items", justify="right")
        for state, n in summary.counts.items():
            table.add_row(state, str(n))
        out.print(table)
        groups: dict[str, list[int]] = {}
        for row in engine.rows(batch or ""):
            if row["state"] in ("failed", "unknown"):
                groups.setdefault(f"{row['error_type']}: {row['error']}", []).append(row["idx"])
        for group, idxs in groups.items():
            out.print(f"{group}\n  items {', '.join(map(str, idxs[:20]))}", highlight=False)
        raise typer.Exit(_verdict(Path(f"batch {batch}"), _shown(summary.counts)) if summary.total else EXIT_REFUSED)
    _exists(journal)
    with Journal(journal) as j:
        counts, failures, meta, options = j.counts(), j.failures(), j.meta, j.options
    table = Table(title=f"{journal} ({meta['provider']}{', sandbox' if options.get('sandbox') else ''})")
    table.add_column("state")
    table.add_column("items", justify="right")
    for state, n in counts.items():
        table.add_row(state, str(n))
    out.print(table)
    for group, rows in failures.items():
        shown = ", ".join(str(r) for r in rows[:20]) + (f" ... ({len(rows)} rows)" if len(rows) > 20 else "")
        out.print(f"{group}\n  rows {shown}", highlight=False)
    raise typer.Exit(_verdict(journal, counts) if sum(counts.values()) else EXIT_DONE)


@app.command()
def export(
    journal: Annotated[Path | None, typer.Argument(help="the journal of a run")] = None,
    file_format: Annotated[Format, typer.Option("--format", help="csv or jsonl")] = Format.csv,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="the file to write (default: stdout)")] = None,
    database: Annotated[str | None, typer.Option(help="a DBOS batch's database (with --batch)")] = None,
    batch: Annotated[str | None, typer.Option(help="a DBOS batch's id")] = None,
) -> None:
    """One row per input, in input order: row, key, state, provider id, status, error, links."""
    if journal is None:
        rows = list(_dbos(database).rows(batch or ""))
        target = output.open("w", newline="", encoding="utf-8") if output else sys.stdout
        try:
            if file_format is Format.csv:
                names = ["idx", "key", "state", "provider_id", "status", "error_type", "error", "attempts"]
                writer = csv.DictWriter(target, fieldnames=names)
                writer.writeheader()
                writer.writerows(rows)
            else:
                for row in rows:
                    target.write(json.dumps(row) + "\n")
        finally:
            if output:
                target.close()
        return
    _exists(journal)
    fields = ["index", "row", "key", "state", "provider_id", "status", "error_type", "error", "attempts", "links"]
    target = output.open("w", newline="", encoding="utf-8") if output else sys.stdout
    try:
        with Journal(journal) as j:
            if file_format is Format.csv:
                writer = csv.DictWriter(target, fieldnames=fields)
                writer.writeheader()
                # the bill's links (AcceptEasy's location) as JSON in one cell
                writer.writerows({**row, "links": json.dumps(row["links"]) if row["links"] else ""} for row in j.rows())
            else:
                for row in j.rows():
                    target.write(json.dumps(row) + "\n")
    finally:
        if output:
            target.close()


sandbox_app = typer.Typer(help="The built-in sandboxes, served over HTTP for other processes.", no_args_is_help=True)
app.add_typer(sandbox_app, name="sandbox")


@sandbox_app.command("serve")
def sandbox_serve(
    provider: Annotated[str, typer.Argument(help="accepteasy, billcom or facturapi")],
    port: Annotated[int, typer.Option(help="the port on 127.0.0.1 (0: any free one)")] = 0,
    state: Annotated[Path | None, typer.Option(help="the state file (loaded if it exists)")] = None,
    webhook_url: Annotated[str | None, typer.Option(help="POST the sandbox's signed webhooks here")] = None,
) -> None:  # fmt: skip
    """Serve PROVIDER's sandbox on loopback, on the real clock, until Ctrl-C; prints its URL and credentials."""
    import threading

    from billkit.client import adapter_class
    from billkit.clock import SystemClock
    from billkit.sandboxing import Sandbox
    from billkit.testing.served import serve

    if provider not in PROVIDERS:
        err.print(f"error: unknown provider {provider!r}: choose {', '.join(PROVIDERS)}", highlight=False)
        raise typer.Exit(EXIT_REFUSED)
    cls = adapter_class(provider)
    box = Sandbox.load(state) if state is not None and state.exists() else cls.make_sandbox(clock=SystemClock())
    with serve(box, port=port, state=state, webhook_url=webhook_url) as served:
        out.print(f"{provider} sandbox at {served.url}", highlight=False)
        for cred in cls.credentials:
            value = box.credentials.get(cred.name)
            if value:
                out.print(f"export {cred.env}={value}", highlight=False)
        for name in ("webhook_secret", "webhook_security_key"):
            if hasattr(box, name):
                out.print(f"webhook secret: {getattr(box, name)}", highlight=False)
        sys.stdout.flush()
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            err.print("stopped" + (f"; state kept in {state}" if state else ""), highlight=False)


def _exists(journal: Path) -> None:
    if not journal.exists():
        err.print(f"error: no journal at {journal}", highlight=False)
        raise typer.Exit(EXIT_REFUSED)


def main() -> None:
    """The console script's entry point."""
    try:
        app()
    except BillkitError as exc:  # a journal that cannot be used, a provider refusing the configuration
        err.print(f"error: {exc}", highlight=False)
        raise SystemExit(EXIT_REFUSED) from None


if __name__ == "__main__":
    main()
