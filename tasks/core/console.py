"""Tables for people: rich on a terminal; wide enough when the output goes to a file or a CI log."""
import sys

from rich.console import Console


def print_table(table) -> None:
    # markup off: cells hold server output such as "[host] ..." that rich would take for a style tag
    Console(width=None if sys.stdout.isatty() else 200, markup=False).print(table)
