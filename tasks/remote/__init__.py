"""Programs that run on the server, sent with the command (`python3 -c`): nothing to install there. Standard
library only, Python 3.8+. Each prints one JSON object as its last line, with an `error` key when it refused."""
import json
import shlex
from typing import Optional
from pathlib import Path

from ..core.errors import UserError

HERE = Path(__file__).resolve().parent


def command(agent: str, *args) -> str:
    """The shell command that runs tasks/remote/<agent>.py on the server with these arguments."""
    return " ".join(["python3", "-c", shlex.quote((HERE / f"{agent}.py").read_text(encoding="utf-8")),
                     *(shlex.quote(str(a)) for a in args)])


def ask(host, agent: str, *args, sudo: bool = False, write: bool = True, timeout: Optional[float] = None) -> dict:
    """Run an agent on the server: its answer, {} under --dry (for a command that writes), its refusal as the one
    line of a UserError."""
    result = host.run(command(agent, *args), sudo=sudo, warn=True, write=write, timeout=timeout)
    if result is None:
        return {}
    answer = parse_answer(result.stdout)
    if "error" in answer:
        raise UserError(f"[{host.name}] {answer['error']}")
    return answer


def parse_answer(stdout: str) -> dict:
    lines = [line for line in stdout.strip().splitlines() if line.startswith("{")]
    if not lines:
        return {"error": f"no answer from the server: {stdout.strip()[-200:] or 'empty output'}"}
    return json.loads(lines[-1])
