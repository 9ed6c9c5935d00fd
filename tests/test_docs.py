"""The READMEs stay short and true: README.md fits in 200 lines and opens with the two
commands (the test one is what .ci/run runs), its configuration table names every
variable the code reads, and every relative link of the three READMEs reaches a file."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from aioapi.settings import ApiSettings

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
READMES = (README, REPO / "bench" / "README.md", REPO / "deploy" / "README.md")
# The other documents beside them, whose links are checked too.
DOCUMENTS = (*READMES, REPO / "bench" / "EXPORT.md")
RUN = "make run"
TEST = "make test"
# [text](target) and ![alt](target); a target ends at whitespace or ")" (none of ours
# holds either). Links inside code blocks are code, not links: blocks are cut first.
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
# How the code reads a variable: env.int("X", ...), environ.Env().str("X"), a
# multi-line call included (the same reads tests/test_deploy_compose.py scans).
ENV_READ = re.compile(r"(?:\benv\.\w+|Env\(\)\.\w+)\(\s*\"([A-Z][A-Z0-9_]*)\"")
ENV_SOURCES = (
    "mymoviedb/settings.py",
    "deploy/gunicorn_admin.conf.py",
    "deploy/gunicorn_api.conf.py",
    "deploy/budget.py",
)


def relative_links(path: Path) -> list[str]:
    text = FENCE.sub("", path.read_text())
    links = []
    for target in LINK.findall(text):
        parts = urlsplit(target)
        if parts.scheme or parts.netloc or not parts.path:  # a URL, or "#anchor" alone
            continue
        links.append(unquote(parts.path))
    return links


def test_readme_fits_in_200_lines() -> None:
    lines = README.read_text().splitlines()
    assert len(lines) <= 200, f"README.md has {len(lines)} lines; history goes to bench/results/"


def test_readme_opens_with_the_two_commands_ci_runs() -> None:
    text = README.read_text()
    block = re.search(r"```sh\n(.*?)```", text, re.DOTALL)
    assert block is not None and text.index("```sh") < 200, "the commands come first"
    commands = [line.split("#")[0].strip() for line in block[1].splitlines()]
    assert commands == [RUN, TEST]
    ci = (REPO / ".ci" / "run").read_text()
    assert re.search(rf"^(?:\S+=\S+ )*{TEST}$", ci, re.MULTILINE), ".ci/run runs README's test"
    makefile = (REPO / "Makefile").read_text()
    for target in ("run", "test"):
        assert re.search(rf"^{target}:", makefile, re.MULTILINE), f"make {target} is gone"


@pytest.mark.parametrize("readme", DOCUMENTS, ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_reach_files(readme: Path) -> None:
    links = relative_links(readme)
    assert links, "the scan finds the links"
    missing = [link for link in links if not (readme.parent / link).exists()]
    assert not missing, f"{readme.relative_to(REPO)} links to nothing: {missing}"


def test_readme_names_every_variable_the_code_reads() -> None:
    read = set().union(*(ENV_READ.findall((REPO / path).read_text()) for path in ENV_SOURCES))
    assert {"SECRET_KEY", "DATABASE_URL", "GUNICORN_API_WORKERS"} <= read  # the scan works
    read |= {ApiSettings.variable(field) for field in ApiSettings.model_fields}
    text = README.read_text()
    # The Gunicorn row names the two servers' shared suffixes once: GUNICORN_ADMIN_* and
    # GUNICORN_API_* with `BIND`, `WORKERS`, ...
    suffixes = set(re.findall(r"`([A-Z][A-Z0-9_]*)`", text))
    named = {
        name
        for name in read
        if f"`{name}`" in text
        or (name.startswith(("GUNICORN_ADMIN_", "GUNICORN_API_")) and _suffix(name) in suffixes)
    }
    assert not read - named, f"add to README's configuration table: {sorted(read - named)}"


def _suffix(name: str) -> str:
    return name.removeprefix("GUNICORN_ADMIN_").removeprefix("GUNICORN_API_")
