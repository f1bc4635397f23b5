"""The deploy history: one JSON line per setup, deploy and rollback in .deploy/history.jsonl on the server, so
that every machine that deploys sees the same log, and rollback knows each release's commit and backup."""
import posixpath
import shlex

from invoke import Collection, task
from rich.table import Table

from .core import deploy_records as records
from .core.console import print_table
from .core.runtime import host_of, settings_of
from .lock import read_only


def history_file(s) -> str:
    return posixpath.join(s.app_root, ".deploy", "history.jsonl")


def read_history(host, s) -> list[dict]:
    return records.parse_history((host.read(history_file(s)) or b"").decode(errors="replace"))


def append(host, s, outcome: records.Outcome) -> None:
    """One line, appended with a single write (O_APPEND): a concurrent reader never sees half an entry."""
    line = shlex.quote(outcome.as_json() + "\n")
    host.run(f"umask 027 && printf '%s' {line} >> {shlex.quote(history_file(s))}")


@task(help={"n": "how many entries, newest last (default 20)"})
@read_only
def history(c, n=20):
    """Show the deploy log: who deployed what, when, how it ended.

    Show the server's deploy history: id, action, result, who, commit and release moves, backup, time, problem.
    """
    s = settings_of(c)
    host = host_of(c, s)
    entries = read_history(host, s)
    table = Table(title=f"{host.name}: {history_file(s)}")
    for column in records.HISTORY_COLUMNS:
        table.add_column(column)
    for entry in entries[-int(n):]:
        table.add_row(*records.history_row(entry))
    print_table(table)
    if not entries:
        print("no deploys recorded yet: run setup or deploy")


ns = Collection(history)
