"""Django-side chores of the benchmark, in a child process with the servers' environment
(the driver never imports Django): ``python -m bench.tasks issue-token NAME`` prints a raw
API token, ``python -m bench.tasks revoke-token RAW`` revokes it."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping, Sequence

from bench.catalogue import REPO

BENCH_USER = "bench"


def call(args: Sequence[str], env: Mapping[str, str]) -> str:
    """Run a task in a child process; return what it printed."""
    completed = subprocess.run([sys.executable, "-m", "bench.tasks", *args], cwd=REPO,
                               env=dict(env), capture_output=True, text=True)  # fmt: skip
    if completed.returncode != 0:
        raise RuntimeError(f"bench.tasks {args[0]} failed: {completed.stderr.strip()}")
    return completed.stdout.strip()


def main(argv: Sequence[str]) -> int:
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission

    from movies.models import ApiToken
    from movies.tokens import issue_token, revoke_token

    match list(argv):
        case ["issue-token", name]:
            user, created = get_user_model().objects.get_or_create(username=BENCH_USER)
            if created:  # a token's user, who never logs in
                user.set_unusable_password()
                user.save()
            # The write mix PATCHes films: exactly the permission a curator's token needs.
            user.user_permissions.add(
                Permission.objects.get(content_type__app_label="movies", codename="change_movie")
            )
            _, raw = issue_token(user, name)
            print(raw)
        case ["revoke-token", raw]:
            for token in ApiToken.objects.filter(prefix=raw.split(".", 1)[0]):
                revoke_token(token)
        case _:
            print(__doc__, file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
