"""app/Dockerfile, checked statically (no registry is reachable here, so the image is not built):
pinned base images, only the app's requirements installed, every COPY source present and not
ignored by .dockerignore, the repository layout that settings.py expects, a non-root user, and
the command, port and paths that infra/numbas_infra/spec.py deploys."""

from __future__ import annotations

import json
import posixpath
import re
import shlex
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import pytest
from numbas_infra import spec

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "app" / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
APP_USER_UID = 10001


# --- a small Dockerfile parser ------------------------------------------------------------------

@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case: FROM, RUN, COPY, ...
    args: str  # the rest of the logical line, continuations joined
    line: int  # where it starts (1-based)


def parse_dockerfile(text: str) -> list[Instruction]:
    """Logical instructions: comment lines dropped (also inside continuations, as Docker does),
    lines ending in a backslash joined with the next."""
    instructions: list[Instruction] = []
    parts: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and not parts):
            continue
        if not parts:
            start = number
        continued = stripped.endswith("\\")
        parts.append(stripped[:-1].strip() if continued else stripped)
        if not continued:
            logical = " ".join(p for p in parts if p)
            keyword, _, args = logical.partition(" ")
            instructions.append(Instruction(keyword.upper(), args.strip(), start))
            parts = []
    assert not parts, "the Dockerfile ends inside a line continuation"
    return instructions


def split_flags(args: str) -> tuple[dict[str, str], list[str]]:
    """`--from=scorm --chown=x a b c` -> ({"from": "scorm", "chown": "x"}, ["a", "b", "c"])."""
    flags: dict[str, str] = {}
    words = shlex.split(args)
    while words and words[0].startswith("--"):
        name, _, value = words.pop(0)[2:].partition("=")
        flags[name] = value
    return flags, words


def exec_form(args: str) -> list[str]:
    value = json.loads(args)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), args
    return value


@dataclass
class Stage:
    image: str
    name: str | None
    instructions: list[Instruction]


def stages(instructions: list[Instruction]) -> list[Stage]:
    result: list[Stage] = []
    for instruction in instructions:
        if instruction.keyword == "FROM":
            _, words = split_flags(instruction.args)
            name = words[2] if len(words) == 3 and words[1].lower() == "as" else None
            result.append(Stage(words[0], name, []))
        else:
            assert result or instruction.keyword in ("ARG",), f"line {instruction.line}: {instruction.keyword} before FROM"
            if result:
                result[-1].instructions.append(instruction)
    return result


def workdir_at(stage: Stage, index: int) -> str:
    """The working directory in effect before stage.instructions[index]."""
    workdir = "/"
    for instruction in stage.instructions[:index]:
        if instruction.keyword == "WORKDIR":
            workdir = posixpath.normpath(posixpath.join(workdir, instruction.args))
    return workdir


# --- a small .dockerignore matcher (Docker's rules: last match wins, parents count, ** spans dirs) ---

def _pattern_regex(pattern: str) -> re.Pattern[str]:
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            out.append(pattern[i:end + 1])
            i = end + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


def dockerignore_rules(text: str) -> list[tuple[bool, re.Pattern[str]]]:
    rules = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = posixpath.normpath(line.lstrip("!").strip().lstrip("/"))
        rules.append((negate, _pattern_regex(pattern)))
    return rules


def is_ignored(path: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    path = posixpath.normpath(path.rstrip("/"))
    candidates = [path] + [str(p) for p in PurePosixPath(path).parents if str(p) != "."]
    ignored = False
    for negate, regex in rules:
        if any(regex.match(candidate) for candidate in candidates):
            ignored = not negate
    return ignored


# --- fixtures -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def instructions() -> list[Instruction]:
    return parse_dockerfile(DOCKERFILE.read_text())


@pytest.fixture(scope="module")
def all_stages(instructions) -> list[Stage]:
    return stages(instructions)


@pytest.fixture(scope="module")
def final(all_stages) -> Stage:
    return all_stages[-1]


@pytest.fixture(scope="module")
def ignore_rules():
    return dockerignore_rules(DOCKERIGNORE.read_text())


def only(stage: Stage, keyword: str) -> list[Instruction]:
    return [i for i in stage.instructions if i.keyword == keyword]


# --- the parsers themselves -------------------------------------------------------------------------

def test_parser_joins_continuations_and_drops_comments():
    text = "FROM a:1.2.3 AS x\n# note\nRUN one \\\n    # inside\n    && two \\\n    && three\nCMD [\"a\", \"b\"]\n"
    parsed = parse_dockerfile(text)
    assert [(i.keyword, i.args, i.line) for i in parsed] == [
        ("FROM", "a:1.2.3 AS x", 1), ("RUN", "one && two && three", 3), ("CMD", '["a", "b"]', 7)]


def test_dockerignore_matcher_follows_docker_rules():
    rules = dockerignore_rules("node_modules\n**/__pycache__\nrequirements*.txt\n!app/requirements.txt\n*.md\n")
    assert is_ignored("node_modules/scorm-again/dist/x.js", rules)
    assert is_ignored("app/core/__pycache__/views.cpython-311.pyc", rules)
    assert is_ignored("requirements.txt", rules)
    assert not is_ignored("app/requirements.txt", rules)
    assert is_ignored("README.md", rules) and not is_ignored("app/README.md", rules)
    assert not is_ignored("app/core/views.py", rules)


# --- the Dockerfile ---------------------------------------------------------------------------------

PINNED_TAG = re.compile(r"^\d+\.\d+\.\d+(?:-[A-Za-z0-9.-]+)?$")


def test_every_base_image_is_pinned_to_an_exact_version(all_stages):
    earlier: set[str] = set()
    for stage in all_stages:
        if stage.image in earlier:  # FROM an earlier stage
            continue
        reference = stage.image.split("@", 1)[0]
        name, _, tag = reference.rpartition(":") if ":" in reference.rsplit("/", 1)[-1] else (reference, "", "")
        assert tag, f"{stage.image}: no tag"
        assert tag != "latest" and "latest" not in tag, f"{stage.image}: 'latest' is not a pin"
        assert PINNED_TAG.match(tag), f"{stage.image}: pin an exact version (x.y.z), not a moving tag"
        if stage.name:
            earlier.add(stage.name)


def test_two_stages_node_for_the_browser_packages_then_python_311(all_stages):
    assert len(all_stages) == 2
    node, app = all_stages
    assert re.fullmatch(r"node:\d+\.\d+\.\d+-bookworm-slim", node.image)
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm", app.image)
    node_runs = " ".join(i.args for i in only(node, "RUN"))
    assert "npm ci" in node_runs and "--omit=dev" in node_runs
    copied = [split_flags(i.args)[1][:-1] for i in only(node, "COPY")]
    assert ["package.json", "package-lock.json"] in copied, "npm ci needs package.json and the lock file"


def test_pip_installs_the_app_requirements_only(final):
    installs = [i.args for i in only(final, "RUN") if "pip install" in i.args]
    assert installs, "no pip install"
    for command in installs:
        requirement_files = re.findall(r"(?:-r|--requirement)[ =](\S+)", command)
        assert requirement_files == ["app/requirements.txt"], command
        assert "--no-cache-dir" in command
        words = shlex.split(command)
        packages = [w for w in words[words.index("install") + 1:] if not w.startswith("-") and w != "app/requirements.txt"]
        assert not packages, f"packages named outside app/requirements.txt: {packages}"
    names = [re.split(r"[=<>!~\[; ]", line.strip(), maxsplit=1)[0].lower()
             for line in (REPO / "app" / "requirements.txt").read_text().splitlines()
             if line.strip() and not line.strip().startswith("#")]
    assert "django" in names and "daphne" in names
    assert not [n for n in names if n.startswith("pulumi") or n.startswith("-r")], \
        "app/requirements.txt must not pull in Pulumi (it is infra/requirements.txt's)"


def test_every_copy_source_exists_and_is_in_the_build_context(all_stages, ignore_rules):
    names = set()
    for stage in all_stages:
        for instruction in only(stage, "COPY") + only(stage, "ADD"):
            assert instruction.keyword == "COPY", f"line {instruction.line}: use COPY, not ADD"
            flags, words = split_flags(instruction.args)
            sources = words[:-1]
            assert sources, f"line {instruction.line}: COPY without a source"
            if "from" in flags:
                assert flags["from"] in names, f"line {instruction.line}: unknown stage {flags['from']}"
                continue
            for source in sources:
                assert (REPO / source).exists(), f"line {instruction.line}: {source} is not in the repository"
                assert not is_ignored(source, ignore_rules), f"line {instruction.line}: .dockerignore excludes {source}"
        if stage.name:
            names.add(stage.name)


def test_dockerignore_keeps_secrets_and_bulk_out(ignore_rules):
    for path in (".git/config", ".venv/bin/python", "node_modules/scorm-again/dist/scorm2004.js", "var/db.sqlite3",
                 "test-artifacts/x.png", "tests/test_passback.py", "bench/run.py", "infra/__main__.py",
                 ".env", "app/.env", "app/core/__pycache__/views.cpython-311.pyc", "app/db.sqlite3",
                 "infra/requirements.txt", "requirements.txt", "Pulumi.prod.yaml"):
        assert is_ignored(path, ignore_rules), f"{path} would be sent to the Docker build"
    for path in ("package.json", "package-lock.json", "app/requirements.txt", "app/manage.py",
                 "app/numbas_lti/settings.py"):
        assert not is_ignored(path, ignore_rules), f"{path} is needed by the build"


def test_layout_matches_what_settings_expects(final, all_stages):
    """The exam-content origin's npm packages are found at REPO_DIR/node_modules/<package>
    (content/assets.py), REPO_DIR being the app directory's parent: the image keeps that layout,
    with the app directory as WORKDIR, and carries every one of them."""
    from content.assets import ASSETS

    app_dir = workdir_at(final, len(final.instructions))
    image_repo = posixpath.dirname(app_dir)

    destinations = {}
    for index, instruction in enumerate(final.instructions):
        if instruction.keyword == "COPY":
            flags, words = split_flags(instruction.args)
            dest = posixpath.normpath(posixpath.join(workdir_at(final, index), words[-1]))
            destinations[(flags.get("from"), tuple(words[:-1]))] = dest
    assert destinations[(None, ("app/",))] == app_dir, "app/ must be copied to the final WORKDIR"
    for asset in ASSETS:
        copied = [dest for (stage, sources), dest in destinations.items()
                  if stage and any(s.rstrip("/").endswith(f"node_modules/{asset.package}") for s in sources)]
        assert copied == [posixpath.join(image_repo, "node_modules", asset.package)], asset.package
    # What the node stage leaves out is what the finder skips anyway.
    node_runs = " ".join(i.args for i in only(all_stages[0], "RUN"))
    for removed in re.findall(r"node_modules/(\S+)", node_runs.split("rm -rf", 1)[1]):
        asset = next(a for a in ASSETS if removed.startswith(a.package + "/"))
        assert removed.removeprefix(asset.package + "/") in asset.skip, removed


def test_runs_as_a_non_root_user(final):
    users = only(final, "USER")
    assert users, "no USER: the container would run as root"
    user = users[-1].args.split(":")[0]
    assert user not in ("root", "0")
    assert user in (str(APP_USER_UID), "numbas")
    runs = " ".join(i.args for i in only(final, "RUN"))
    assert f"--uid {APP_USER_UID}" in runs


def test_writable_directories_belong_to_the_app_user(final):
    setup = [i.args for i in only(final, "RUN") if "mkdir" in i.args]
    assert setup, "no mkdir for the writable directories"
    for directory in (spec.STATIC_ROOT, spec.MEDIA_ROOT, spec.PRIVATE_ROOT, spec.app_environment(spec.AppSettings("x", "exams.x"))["VAR_DIR"]):
        assert any(directory in command and "chown" in command for command in setup), directory


def test_environment_has_no_secrets_and_python_runs_unbuffered(final):
    env_text = " ".join(i.args for i in only(final, "ENV") + only(final, "ARG"))
    assert "PYTHONDONTWRITEBYTECODE=1" in env_text and "PYTHONUNBUFFERED=1" in env_text
    for secret in ("SECRET_KEY", "DATABASE_URL", "EMAIL_URL", "PASSWORD", "TOKEN", "PASSPHRASE"):
        assert secret not in env_text.upper(), f"{secret} must come from the deployer, not the image"


def test_command_port_and_health_check_match_the_deployment(final):
    (cmd,) = only(final, "CMD")[-1:]
    assert exec_form(cmd.args) == spec.DAPHNE_COMMAND
    assert not only(final, "ENTRYPOINT")
    assert only(final, "EXPOSE")[-1].args.split() == [str(spec.DAPHNE_PORT)]
    assert workdir_at(final, len(final.instructions)).endswith("/app"), "spec.py's commands run from app/"
    (health,) = only(final, "HEALTHCHECK")
    test = exec_form(health.args[health.args.index("CMD") + 3:].strip())
    assert test[:2] == ["python", "-c"]
    assert f"http://127.0.0.1:{spec.DAPHNE_PORT}/health/" in test[2]
    compile(test[2], "<healthcheck>", "exec")
