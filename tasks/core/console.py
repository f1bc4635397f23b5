"""Tables for people: rich on a terminal; wide enough when the output goes to a file or a CI log."""
import sys

from rich.console import Console


def print_table(table) -> None:
    Console(width=None if sys.stdout.isatty() else 200).print(table)
