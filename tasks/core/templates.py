"""The one way templates are rendered (nginx/, systemd/): Jinja2 with undefined variables as errors, not ''."""
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from .settings import PROJECT_ROOT


def render_template(folder: str, name: str, context: dict) -> str:
    env = Environment(loader=FileSystemLoader(str(PROJECT_ROOT / folder)), undefined=StrictUndefined,
                      keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True, autoescape=False)
    return env.get_template(name).render(context)
