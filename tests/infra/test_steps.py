"""The deploy's steps (infra/numbas_infra/steps.py), run here as the server would run them: the
scripts are the rendered ones, and `docker` is a stand-in that runs the one-off container's
command in app/ with the env file it is given (so the migrate step migrates a real PostgreSQL
database), answers `inspect`, and plays nginx for `exec`."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import psycopg2
import pytest
from psycopg2 import sql

from numbas_infra import spec, steps

REPO = Path(__file__).resolve().parents[2]

FAKE_DOCKER = textwrap.dedent('''\
    #!{python}
    import os, subprocess, sys
    args = sys.argv[1:]
    with open(os.environ["FAKE_DOCKER_LOG"], "a") as log:
        log.write(" ".join(args) + "\\n")
    if args[0] == "run":
        rest, env_file = args[1:], None
        while rest[0].startswith("--"):
            flag = rest.pop(0)
            if flag in ("--network", "--env-file", "--mount", "--name"):
                value = rest.pop(0)
                if flag == "--env-file":
                    env_file = value
        image, command = rest[0], rest[1:]
        env = {{"PATH": os.environ["PATH"]}}
        for line in open(env_file):
            key, value = line.rstrip("\\n").split("=", 1)
            env[key] = value
        sys.exit(subprocess.run(command, cwd=os.environ["FAKE_DOCKER_APP"], env=env).returncode)
    if args[0] == "inspect":
        print(os.environ.get("FAKE_DOCKER_RUNNING", "false"))
        sys.exit(0)
    if args[0] == "exec" and args[2] == "nginx":
        if "-t" in args:
            conf = open(args[args.index("-c") + 1]).read()
            if "broken" in conf:
                print("nginx: [emerg] unknown directive \\"broken\\"", file=sys.stderr)
                sys.exit(1)
        sys.exit(0)
    sys.exit(f"fake docker: unexpected {{args}}")
''')


@pytest.fixture
def fake_docker(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text(FAKE_DOCKER.format(python=sys.executable))
    (bin_dir / "docker").chmod(0o755)
    (bin_dir / "python").write_text(f'#!/bin/sh\nexec {sys.executable} "$@"\n')
    (bin_dir / "python").chmod(0o755)
    log = tmp_path / "docker.log"
    log.touch()

    def run(script: str, *, stdin: str = "", **env) -> subprocess.CompletedProcess:
        environment = {"PATH": f"{bin_dir}:/usr/bin:/bin", "FAKE_DOCKER_LOG": str(log),
                       "FAKE_DOCKER_APP": str(REPO / "app"), **env}
        return subprocess.run(["sh", "-c", script], input=stdin, capture_output=True, text=True, env=environment,
                              timeout=300)

    run.log = log
    return run


@pytest.fixture
def scratch_database():
    """An empty database on the suite's PostgreSQL (scripts/test starts it)."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        pytest.fail("scripts/test provides DATABASE_URL (PostgreSQL); run the suite through it")
    name = f"deploy_step_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(url.rsplit("/", 1)[0] + "/postgres")
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield url.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.cursor() as cursor:
            cursor.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
        admin.close()


def production_env(database_url: str, root: Path) -> dict[str, str]:
    """The environment the migrate step gets in production (spec.py), pointed at this machine."""
    env = spec.app_environment(spec.AppSettings(domain="numbas.example.ac.uk", exam_domain="exams.example.ac.uk"))
    for key in ("STATIC_ROOT", "MEDIA_ROOT", "PRIVATE_ROOT", "VAR_DIR"):
        env[key] = str(root / key.lower())
    env |= {"DATABASE_URL": database_url, "SECRET_KEY": "step-test-" + uuid.uuid4().hex,
            "REDIS_URL": os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")}
    return env


def test_the_migrate_step_migrates_and_a_failing_migration_stops_it_with_its_output(fake_docker, scratch_database,
                                                                                      tmp_path):
    script = steps.migrate_script(image="numbas-lti-app:abc", network=spec.NETWORK, mounts=spec.APP_MOUNTS,
                                  backup_container=None)
    env_file = steps.env_file_lines(production_env(scratch_database, tmp_path))

    done = fake_docker(script, stdin=env_file)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Applying lms.0003_consumer_instructor_roles... OK" in done.stdout
    assert (tmp_path / "static_root" / "staticfiles.json").exists()  # collectstatic ran too
    assert "--env-file" in fake_docker.log.read_text() and "SECRET_KEY" not in fake_docker.log.read_text()

    # The next release's migration cannot apply (here: a column of that name is already there).
    with psycopg2.connect(scratch_database) as connection, connection.cursor() as cursor:
        subprocess.run([sys.executable, "manage.py", "migrate", "lms", "0002"], cwd=REPO / "app", check=True,
                       env={**os.environ, **production_env(scratch_database, tmp_path)}, capture_output=True)
        cursor.execute("ALTER TABLE lms_consumer ADD COLUMN instructor_roles integer")
    import shutil

    shutil.rmtree(tmp_path / "static_root")
    failed = fake_docker(script, stdin=env_file)
    assert failed.returncode != 0
    assert 'column "instructor_roles" of relation "lms_consumer" already exists' in failed.stdout
    assert "numbas-lti: the database migration failed (exit 1)." in failed.stderr
    assert "the running version keeps serving" in failed.stderr
    assert not (tmp_path / "static_root").exists()  # nothing ran after the failure (collectstatic)


def test_the_migrate_step_backs_up_first_when_backups_are_configured():
    script = steps.migrate_script(image="i:t", network="n", mounts=(), backup_container="numbas-lti-backup")
    assert script.index("docker exec numbas-lti-backup numbas-backup pre-deploy") < script.index("docker run")


def test_the_nginx_step_installs_reloads_and_rolls_back_what_nginx_refuses(fake_docker, tmp_path):
    directory = tmp_path / "etc" / "nginx"
    directory.mkdir(parents=True)
    script = steps.nginx_config_script(container="numbas-lti-nginx", conf=f"{directory}/nginx.conf",
                                       directory=str(directory))
    first = steps.tar_bundle({"nginx.conf": ("events {}\n", 0o644), "bootstrap/key.pem": ("KEY", 0o600)})
    assert steps.tar_bundle({"bootstrap/key.pem": ("KEY", 0o600), "nginx.conf": ("events {}\n", 0o644)}) == first

    installed = fake_docker(script, stdin=first)  # nginx not running yet: the first deploy
    assert installed.returncode == 0, installed.stderr
    assert "installed" in installed.stdout and (directory / "nginx.conf").read_text() == "events {}\n"
    assert oct((directory / "bootstrap" / "key.pem").stat().st_mode & 0o777) == "0o600"

    second = steps.tar_bundle({"nginx.conf": ("events {}\nhttp {}\n", 0o644)})
    reloaded = fake_docker(script, stdin=second, FAKE_DOCKER_RUNNING="true")
    assert reloaded.returncode == 0 and "reloaded" in reloaded.stdout
    assert "exec numbas-lti-nginx nginx -s reload" in fake_docker.log.read_text()

    refused = fake_docker(script, stdin=steps.tar_bundle({"nginx.conf": ("broken;\n", 0o644)}), FAKE_DOCKER_RUNNING="true")
    assert refused.returncode == 1
    assert 'unknown directive "broken"' in refused.stdout + refused.stderr
    assert "previous one is back in place" in refused.stdout + refused.stderr
    assert (directory / "nginx.conf").read_text() == "events {}\nhttp {}\n"  # what nginx runs with, still
    assert not (directory.parent / "nginx.old").exists() and not (directory.parent / "nginx.new").exists()


@pytest.mark.parametrize("script", [
    steps.prepare_script(),
    steps.migrate_script(image="i:t", network="n", mounts=spec.APP_MOUNTS, backup_container="b"),
    steps.nginx_config_script(container="c", conf="/etc/numbas-lti/nginx/nginx.conf"),
    steps.verify_script(domain="numbas.example.ac.uk", probe_container="d", nginx_container="n"),
    steps.prune_script(repository="numbas-lti-app", current_tag="abc"),
    steps.database_password_script(container="p", user="u", database="d"),
], ids=["prepare", "migrate", "nginx", "verify", "prune", "database-password"])
def test_every_step_is_valid_posix_sh(script):
    checked = subprocess.run(["sh", "-n"], input=script, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr


def test_the_prepare_step_installs_the_manage_command(tmp_path):
    script = steps.prepare_script()
    assert "cloud-init status --wait" in script and "mkdir -p /etc/numbas-lti " in script
    assert "chown 10001:101 /mnt/files/private" in script  # a server set up before the permission fix too
    body = script[script.index("<<'NUMBAS_EOF'\n") + 15:script.index("NUMBAS_EOF\nchmod")]
    assert body == steps.MANAGE_SCRIPT
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text('#!/bin/sh\nif [ "$1" = ps ]; then echo c0ffee; else echo "$@"; fi\n')
    (bin_dir / "docker").chmod(0o755)
    (tmp_path / "manage").write_text(body)
    ran = subprocess.run(["sh", str(tmp_path / "manage"), "createsuperuser", "--username", "ops"], capture_output=True,
                         text=True, stdin=subprocess.DEVNULL, env={"PATH": f"{bin_dir}:/usr/bin:/bin"})
    assert ran.stdout.strip() == "exec -i c0ffee python manage.py createsuperuser --username ops"


def test_the_database_password_step_sets_the_state_s_password_through_stdin(fake_docker, scratch_database, tmp_path):
    """Against PostgreSQL itself: the stand-in docker runs `psql` here (the postgres container's)."""
    role = f"step_{uuid.uuid4().hex[:6]}"
    def stored_password():
        with psycopg2.connect(scratch_database) as connection, connection.cursor() as cursor:
            cursor.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s", [role])
            return cursor.fetchone()[0]

    with psycopg2.connect(scratch_database) as connection, connection.cursor() as cursor:
        cursor.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD 'old'").format(sql.Identifier(role)))
    before = stored_password()
    try:
        bin_dir = tmp_path / "psqlbin"
        bin_dir.mkdir()
        url = psycopg2.extensions.parse_dsn(scratch_database)
        # `docker exec -i CONTAINER psql ARGS` → psql ARGS against the suite's server.
        (bin_dir / "docker").write_text(
            f'#!/bin/sh\nshift 3\nexec psql -h {url["host"]} -p {url["port"]} -U postgres -d {url["dbname"]} '
            f'"$@"\n')
        (bin_dir / "docker").chmod(0o755)
        script = steps.database_password_script(container="numbas-lti-postgres", user="postgres", database=url["dbname"])
        new = "Rotated" + uuid.uuid4().hex
        ran = subprocess.run(["sh", "-c", script], input=steps.database_password_sql(role, new), capture_output=True,
                             text=True, env={"PATH": f"{bin_dir}:/usr/bin:/bin"}, timeout=60)
        assert ran.returncode == 0 and "database password set" in ran.stdout, ran.stdout + ran.stderr
        assert new not in script
        assert stored_password() != before and stored_password().startswith("SCRAM-SHA-256$")
    finally:
        with psycopg2.connect(scratch_database) as connection, connection.cursor() as cursor:
            cursor.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))
    assert steps.database_password_sql("u", "x'; DROP TABLE y; --") == "ALTER ROLE u PASSWORD 'x''; DROP TABLE y; --';\n"
    with pytest.raises(ValueError):
        steps.database_password_sql("u", "two\nlines")


def test_env_files_refuse_values_docker_cannot_carry():
    assert steps.env_file_lines({"B": "2", "A": "x=y"}) == "A=x=y\nB=2\n"
    with pytest.raises(ValueError, match="line break"):
        steps.env_file_lines({"A": "one\ntwo"})


def test_certbot_backs_off_after_failures_and_renews_twice_a_day(tmp_path):
    """The certbot container's loop, with a certbot that fails three times and a `sleep` that
    records how long it would wait (and ends the loop at the 12-hour wait)."""
    from numbas_infra.app_stack import CERTBOT_LOOP

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls, sleeps = tmp_path / "calls", tmp_path / "sleeps"
    (bin_dir / "certbot").write_text(
        f'#!/bin/sh\necho x >> {calls}\n[ "$(wc -l < {calls})" -gt 3 ]\n')
    (bin_dir / "sleep").write_text(
        f'#!/bin/sh\necho "$1" >> {sleeps}\nif [ "$1" = 12h ]; then kill -TERM "$LOOP_PID"; fi\n')
    for tool in ("certbot", "sleep"):
        (bin_dir / tool).chmod(0o755)
    loop = CERTBOT_LOOP.format(webroot="/var/www/acme", staging="")
    ran = subprocess.run(["sh", "-c", f'LOOP_PID=$$; export LOOP_PID; {loop}'], capture_output=True, text=True,
                         timeout=30, env={"PATH": f"{bin_dir}:/usr/bin:/bin", "DOMAIN": "d", "EXAM_DOMAIN": "e",
                                          "ACME_EMAIL": "a@b.c"})
    assert sleeps.read_text().split() == ["300", "600", "1200", "12h"], ran.stdout + ran.stderr
    assert ran.stdout.count("certbot failed; next attempt in") == 3


def test_prune_keeps_the_newest_images_and_the_current_one(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    removed = tmp_path / "removed"
    listing = "\\n".join(f"2026-12-0{day} 10:00:00 +0000 UTC\\t{tag}" for day, tag in
                         [(1, "oldest"), (5, "newest"), (3, "middle"), (2, "older"), (4, "newer")])
    (bin_dir / "docker").write_text(
        f'#!/bin/sh\ncase "$1 $2" in\n  "image ls") printf "{listing}\\n" ;;\n'
        f'  "image rm") echo "$3" >> {removed} ;;\nesac\nexit 0\n')
    (bin_dir / "docker").chmod(0o755)
    script = steps.prune_script(repository="numbas-lti-app", current_tag="oldest", keep=3)
    ran = subprocess.run(["sh", "-c", script], capture_output=True, text=True, env={"PATH": f"{bin_dir}:/usr/bin:/bin"})
    assert ran.returncode == 0, ran.stderr
    # Kept: newest, newer, middle (the last three) and oldest (running now, e.g. after a rollback).
    assert removed.read_text().split() == ["numbas-lti-app:older"]
