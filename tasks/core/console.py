"""Tables for people: rich on a terminal; wide enough when the output goes to a file or a CI log."""
import json
import sys

from rich.console import Console
from rich.table import Table

from .checks import worst
from .secrets import mask_now


def print_table(table) -> None:
    for column in table.columns:   # masked before rich wraps the cells (see mask_now)
        column._cells = [mask_now(cell) if isinstance(cell, str) else cell for cell in column._cells]
    # markup off: cells hold server output such as "[host] ..." that rich would take for a style tag
    Console(width=None if sys.stdout.isatty() else 200, markup=False).print(table)


def print_findings(title: str, findings: list, as_json: bool, about: dict) -> None:
    """Checks' findings as one table (check, result, saw, fix), or as JSON for scripts: `about` (what was checked)
    and the worst result first."""
    if as_json:
        print(json.dumps({**about, "result": worst(findings), "checks": [f.as_dict() for f in findings]}, indent=2))
        return
    table = Table(title=title)
    for column in ("check", "result", "saw", "fix"):
        table.add_column(column)
    for f in findings:
        table.add_row(f.check, f.result, f.saw, f.fix)
    print_table(table)
