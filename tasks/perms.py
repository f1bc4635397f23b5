"""Permissions nginx needs (guide section 4: `13: Permission denied` because www-data could not enter the home
directory; section 9: uploaded files nginx could not read).

The fix is the least that works: the traverse bit (o+x) on each parent that lacks it (so /home/ubuntu becomes 751:
enterable, not listable), 755/644 inside the served trees. Verified by reading files as the nginx user and by an
HTTP request through nginx.
"""
import posixpath
import shlex

from invoke import Collection, task

from .core import backend_plan as plan
from .core import facts
from .core.errors import UserError
from .core.runtime import host_of, settings_of
from .lock import locked


def served_trees(s) -> list[str]:
    """The trees nginx serves, in the served release: the frontend export and Django's collected static files."""
    return [plan.export_dir(s), plan.static_root(s)]


def inside_releases(s, real: str) -> bool:
    """A served tree's real path must stay in the releases: one that leads elsewhere (a link to /etc) is never
    followed, read or changed."""
    return real.startswith(plan.releases_dir(s) + "/")


def inspect(host, s) -> tuple[dict, list[str], list[str], dict]:
    """({served tree: its real path, or None when missing or leading out of the releases}, directories nginx cannot
    traverse (those above the app root too: the app's user needs them as well), entries with wrong modes,
    {served tree: where it leads when that is outside the releases})."""
    found = {tree: host.probe(f"readlink -e {shlex.quote(tree)}").stdout.strip() for tree in served_trees(s)}
    escaping = {tree: real for tree, real in found.items() if real and not inside_releases(s, real)}
    trees = {tree: real if real and tree not in escaping else None for tree, real in found.items()}
    real = [path for path in trees.values() if path]
    parents = sorted({d for path in real + [s.app_root] for d in facts.ancestors(path)[:-1]} | {s.app_root}, key=len)
    blocked = facts.untraversable(host.probe(facts.traverse_command(s.nginx.user, parents)).stdout, s.nginx.user)
    wrong = [line for path in real for line in host.probe(facts.bad_modes_command(path), sudo=True).stdout.splitlines()]
    return trees, blocked, wrong, escaping


def verify(host, s) -> list[str]:
    """What nginx still cannot do: read the index and a hashed asset as its user, serve our index over HTTP."""
    out = served_trees(s)[0]
    index = posixpath.join(out, "index.html")
    asset = host.probe(f"find {shlex.quote(out)}/_next/static/ -type f -name '*.js' | head -n 1").stdout.strip()
    reads = [("-r", index)] + ([("-r", asset)] if asset else [])
    problems = [f"{s.nginx.user} cannot read {path}" for _, path in
                facts.parse_access(host.probe(facts.access_command(s.nginx.user, reads), sudo=True).stdout)]
    domain = (s.domains or ["localhost"])[0]
    # -L -k: follow the redirect to HTTPS once TLS is on; this checks what is served, not the certificate
    curl = (f"curl -s -L -k --noproxy '*' --resolve {domain}:80:127.0.0.1 --resolve {domain}:443:127.0.0.1 "
            f"http://{domain}/")
    served = host.probe(f"{curl} | sha256sum").stdout.split()[:1]
    wanted = host.probe(f"sha256sum < {shlex.quote(index)}", sudo=True).stdout.split()[:1]
    if served != wanted:
        code = host.probe(f"{curl} -o /dev/null -w '%{{http_code}}'").stdout
        problems.append(f"nginx does not serve {index} for http://{domain}/ (it answers {code.strip() or 'nothing'}"
                        "; is the site installed? run nginx-reload)")
    return problems


@task(help={"check": "only report what is wrong (exit 1 if anything is); change nothing"})
@locked(read_only_with="check")
def fix_perms(c, check=False):
    """Let nginx read the served files; verify over HTTP.

    Make the served trees readable by nginx (traverse bits on parents, 755/644 modes), then verify over HTTP.
    """
    s = settings_of(c)
    return fix(host_of(c, s), s, check)


def fix(host, s, check: bool = False):
    """Traverse bits and served modes made right (or, with `check`, reported: exit 1 when anything is wrong)."""
    trees, blocked, wrong, escaping = inspect(host, s)
    for tree in (t for t, real in trees.items() if real is None and t not in escaping):
        host.say(f"not there yet: {tree}")
    for tree, real in escaping.items():
        host.say(f"{tree} leads to {real}, outside {plan.releases_dir(s)}: not followed, nothing there changed")
    for path in blocked:
        host.say(f"{s.nginx.user} cannot enter {path}")
    if wrong:
        host.say(f"{len(wrong)} entries lack mode 755 (dirs) / 644 (files), e.g. {wrong[0][2:]}")
    frontend_served = trees[served_trees(s)[0]] is not None
    if check:
        problems = verify(host, s) if frontend_served else []
        for problem in problems:
            host.say(problem)
        if escaping:
            raise UserError(f"[{host.name}] {next(iter(escaping))} leads out of the releases: deploy again for a "
                            "whole release (or rollback)")
        if blocked or wrong or problems:
            raise UserError(f"[{host.name}] permissions need fixing: run fix-perms")
        host.say("permissions ok")
        return
    if blocked:
        host.sudo(" && ".join(f"chmod o+x -- {shlex.quote(d)}" for d in blocked))
    if wrong:   # find without -L and chmod of what find saw: a symbolic link inside is never followed
        host.sudo(" && ".join(f"find {shlex.quote(real)} -type d ! -perm 0755 -exec chmod 0755 {{}} + && "
                              f"find {shlex.quote(real)} -type f ! -perm 0644 -exec chmod 0644 {{}} +"
                              for real in trees.values() if real))
    if host.dry:
        host.say("would change the modes above" if blocked or wrong else "nothing to change")
        return None
    problems = verify(host, s) if frontend_served else []
    if problems:
        raise UserError(f"[{host.name}] after fixing modes: {problems[0]}")
    if escaping:
        raise UserError(f"[{host.name}] {next(iter(escaping))} leads out of the releases and was left alone: deploy "
                        "again for a whole release (or rollback)")
    host.say(("permissions fixed" if blocked or wrong else "permissions ok: nothing changed") +
             ("; nginx reads and serves the site" if frontend_served else ""))
    return "file modes" if blocked or wrong else None


ns = Collection(fix_perms)
