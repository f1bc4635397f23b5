"""Settings of the chosen environment: show them, check them (guide section 1: every default configurable)."""
from invoke import Collection, task
from .core.console import print_table
from rich.table import Table

from .core.runtime import settings_of
from .core.backend_plan import server_secrets
from .core.secrets import MASK
from .core.settings import fields
from .lock import read_only


@task(help={"all": "also list every known key with its default and meaning"})
@read_only
def settings(c, all=False):
    """Check and show the chosen environment's settings.

    Check and show the settings of the chosen environment (-f conf/ENV.yaml); secrets masked.
    """
    s = settings_of(c)
    table = Table(title=f"settings from {s.source}", show_lines=False)
    for column in ("key", "value") + (("meaning",) if all else ()):
        table.add_column(column)
    values = s.as_dict()
    for key, field in fields():
        node = values
        for part in key.split(".")[1:]:
            node = node.get(part) if isinstance(node, dict) else None
        if all or node != field.default:
            table.add_row(key, repr(node), *((field.help,) if all else ()))
    print_table(table)
    if s.secrets_path is not None:
        state = f"{len(s.secrets)} keys" if s.secrets_path.is_file() else "missing"
        print(f"secrets: {s.secrets_path} ({state})")
        sent = server_secrets(s)
        for key in sorted(s.secrets):
            print(f"  {key}={MASK}  " + ("(server's .env)" if key in sent else "(this machine only: the tool's own)"))
    print("settings ok")


ns = Collection(settings)
