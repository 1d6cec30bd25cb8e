"""The deploy's steps on the server, as shell scripts rendered in plain Python (no Pulumi): the
Pulumi program runs them over SSH (`command.remote.Command`, which fails the deploy when a script
exits non-zero, with its output), and the tests run them locally.

    prepare       wait for cloud-init, create the host directories the containers mount
    migrate       back up (when configured), then migrate + collectstatic in a one-off container;
                  its failure stops the deploy before any new app container exists
    nginx_config  install nginx's files (config, upstream list, start script, bootstrap certificate,
                  error pages) and reload nginx: a new upstream list is a reload, never a new nginx
    verify        /health/ through nginx on the public name, or say how to roll back
    prune         remove app images older than the last few (kept for rollback)

Every script is POSIX sh, and `guarded()` gives each the same failure report."""

from __future__ import annotations

import base64
import hashlib
import io
import shlex
import tarfile

from numbas_infra import spec

NGINX_DIR = spec.NGINX_DIR
APP_IMAGES_KEPT = 3  # the current one and two before it: `git checkout <previous> && pulumi up` needs no build


def guarded(title: str, body: str, advice: str) -> str:
    """Run `body` (sh) with its output captured; on failure, print it with what failed and what to
    do, and exit with its status (so the deploy stops there)."""
    return f"""\
set -u
numbas_out="$(mktemp)"
trap 'rm -f "$numbas_out"' EXIT
(
set -eu
{body}
) >"$numbas_out" 2>&1
numbas_status=$?
cat "$numbas_out"
if [ "$numbas_status" -ne 0 ]; then
  {{
    echo
    echo {shlex.quote(f"numbas-lti: {title} failed")} "(exit $numbas_status)."
    echo {shlex.quote(advice)}
  }} >&2
  exit "$numbas_status"
fi
"""


CLOUD_INIT_WAIT = "cloud-init status --wait >/dev/null; s=$?; [ $s -eq 0 ] || [ $s -eq 2 ]"


MANAGE_COMMAND = "/usr/local/bin/numbas-lti-manage"
MANAGE_SCRIPT = f"""\
#!/bin/sh
# Django's manage.py in a running daphne container (their names change with each deploy):
#   numbas-lti-manage createsuperuser
#   numbas-lti-manage create_lti_consumer --key moodle
set -eu
c="$(docker ps -q --filter label={spec.ROLE_LABEL}=daphne --filter status=running | head -n 1)"
[ -n "$c" ] || {{ echo "numbas-lti-manage: no daphne container is running (docker ps -a)" >&2; exit 1; }}
if [ -t 0 ]; then exec docker exec -it "$c" python manage.py "$@"; fi
exec docker exec -i "$c" python manage.py "$@"
"""


def prepare_script() -> str:
    """cloud-init exits 2 for "done, with recoverable errors": the server is usable. Installs
    `numbas-lti-manage` for operators."""
    from numbas_infra import cloud_init

    install = f"cat > {MANAGE_COMMAND} <<'NUMBAS_EOF'\n{MANAGE_SCRIPT}NUMBAS_EOF\nchmod 755 {MANAGE_COMMAND}"
    # The files volume's owners and modes as cloud-init sets them, also on a server created before
    # (cloud-init runs once): nginx must read what the app writes.
    files = "\n".join(line for d in cloud_init.files_directories() for line in cloud_init.directory_lines(spec.FILES_MOUNT, d))
    return guarded(
        "waiting for the server's setup (cloud-init)",
        f"{CLOUD_INIT_WAIT}\nmountpoint -q {spec.FILES_MOUNT}\nmkdir -p {' '.join(spec.HOST_DIRS)}\n"
        f"{files}\ncommand -v docker >/dev/null\n{install}",
        "See /var/log/cloud-init-output.log on the server (ssh root@<ipv4>).",
    )


def env_file_lines(env: dict[str, str]) -> str:
    """A `docker run --env-file` file: KEY=value lines (values must be on one line)."""
    for key, value in env.items():
        if "\n" in value or "\r" in value:
            raise ValueError(f"environment value of {key} has a line break; docker's env files cannot carry it")
    return "".join(f"{key}={value}\n" for key, value in sorted(env.items()))


def migrate_script(*, image: str, network: str, mounts: tuple[spec.Mount, ...], backup_container: str | None) -> str:
    """Reads the app's environment (with secrets) as an env file on stdin: nothing secret is on a
    command line or in a file that outlives the step."""
    volume_args = " ".join(
        f"--mount type=bind,source={m.source},target={m.target}" for m in mounts)
    command = " && ".join(shlex.join(c) for c in spec.MIGRATE_STEPS)
    backup = ""
    if backup_container:
        backup = (f"echo 'Backing up the database before migrating'\n"
                  f"docker exec {backup_container} numbas-backup pre-deploy\n")
    body = f"""\
umask 077
env_file="$(mktemp)"
trap 'rm -f "$env_file"' EXIT
cat >"$env_file"
{backup}echo 'Migrating the database and collecting static files ({image})'
docker run --rm --network {network} --env-file "$env_file" {volume_args} {image} sh -c {shlex.quote(command)}"""
    return guarded(
        "the database migration", body,
        "Nothing else was changed: the running version keeps serving on the old schema. Fix the migration "
        "(its output is above), commit, and run `pulumi up` again. A backup was taken just before, when "
        "backups are configured (README: Restore).",
    )


def database_password_script(*, container: str, user: str, database: str) -> str:
    """Sets the app's database password to the one in the state (the SQL comes on stdin, never on a
    command line). The postgres image applies POSTGRES_PASSWORD only when it creates the cluster,
    so without this a rotated password (`pulumi up --replace` of the password) would lock the app out."""
    body = (f"docker exec -i {container} psql -q -v ON_ERROR_STOP=1 -U {user} -d {database} -f - >/dev/null\n"
            f"echo 'database password set'")
    return guarded("setting the database password", body, "The running version keeps its connections. See "
                   f"`docker logs {container}` on the server.")


def database_password_sql(user: str, password: str) -> str:
    """A string literal as PostgreSQL reads it (standard_conforming_strings, on since 9.1)."""
    if any(ord(c) < 32 for c in password):
        raise ValueError("the database password must not contain control characters")
    return "ALTER ROLE {} PASSWORD '{}';\n".format(user, password.replace("'", "''"))


def tar_bundle(files: dict[str, tuple[str, int]]) -> str:
    """{relative path: (content, mode)} as a base64 .tar.gz, byte-for-byte the same for the same
    files (fixed times and owners), so that its digest says exactly when nginx's files change."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(files):
            content, mode = files[path]
            data = content.encode()
            info = tarfile.TarInfo(path)
            info.size, info.mode, info.mtime, info.uid, info.gid = len(data), mode, 0, 0, 0
            tar.addfile(info, io.BytesIO(data))
    import gzip

    return base64.b64encode(gzip.compress(raw.getvalue(), mtime=0)).decode()


def bundle_digest(bundle: str) -> str:
    return hashlib.sha256(bundle.encode()).hexdigest()[:16]


def nginx_config_script(*, container: str, conf: str, directory: str = NGINX_DIR) -> str:
    """Installs the bundle (base64 tar.gz on stdin) as `directory`, tests it in the running nginx and
    reloads; a config nginx refuses is rolled back and the step fails. Before nginx exists (first
    deploy) the files are just installed."""
    body = f"""\
umask 022
new="{directory}.new"; old="{directory}.old"
rm -rf "$new" "$old"; mkdir -p "$new"
base64 -d | tar -xzf - -C "$new"
[ -d "{directory}" ] && mv "{directory}" "$old"
mv "$new" "{directory}"
if [ "$(docker inspect -f '{{{{.State.Running}}}}' {container} 2>/dev/null || true)" = true ]; then
  if docker exec {container} nginx -t -q -c {conf}; then
    docker exec {container} nginx -s reload -c {conf}
    echo 'nginx reloaded with the new configuration'
  else
    rm -rf "{directory}"; [ -d "$old" ] && mv "$old" "{directory}"
    echo 'nginx refused the new configuration; the previous one is back in place' >&2
    exit 1
  fi
else
  echo 'nginx files installed (nginx starts with them)'
fi
rm -rf "$old\""""
    return guarded("installing nginx's configuration", body,
                   "nginx keeps serving with its previous configuration. Its complaint is above.")


VERIFY_PY = """\
import http.client, socket, ssl, sys, time
domain, host = sys.argv[1], sys.argv[2]
port, seconds = (int(sys.argv[3]), float(sys.argv[4])) if len(sys.argv) > 4 else (443, 90)
context = ssl.create_default_context()
context.check_hostname, context.verify_mode = False, ssl.CERT_NONE  # the bootstrap certificate, before Let's Encrypt's
deadline, last = time.monotonic() + seconds, "no answer"
while True:
    try:
        raw = socket.create_connection((host, port), timeout=10)
        connection = http.client.HTTPSConnection(domain, port, timeout=10, context=context)
        connection.sock = context.wrap_socket(raw, server_hostname=domain)
        connection.request("GET", "/health/", headers={"Host": domain if port == 443 else f"{domain}:{port}"})
        answer = connection.getresponse()
        body = answer.read(2000).decode(errors="replace")
        if answer.status == 200:
            print(f"https://{domain}/health/ through nginx: 200 {body}")
            sys.exit(0)
        last = f"{answer.status} {body}"
    except OSError as error:
        last = repr(error)
    if time.monotonic() > deadline:
        break
    time.sleep(3)
print(f"https://{domain}/health/ through nginx: {last}", file=sys.stderr)
sys.exit(1)
"""


def verify_script(*, domain: str, probe_container: str, nginx_container: str) -> str:
    """From inside the app network (a daphne container has Python): TLS with the public name's SNI
    and Host to the nginx container, as a browser would reach it."""
    body = (f"docker exec {probe_container} python -c {shlex.quote(VERIFY_PY)} "
            f"{shlex.quote(domain)} {nginx_container}")
    return guarded(
        f"verifying https://{domain}/health/", body,
        "The new version is deployed but not healthy. Look at `docker logs` of the daphne containers and "
        "nginx on the server. To roll back: check out the previous release and run `pulumi up` "
        "(README: Roll back); the previous app images are kept on the server.",
    )


def prune_script(*, repository: str, current_tag: str, keep: int = APP_IMAGES_KEPT) -> str:
    body = f"""\
docker image ls {repository} --format '{{{{.CreatedAt}}}}\t{{{{.Tag}}}}' | sort -r | cut -f2 | tail -n +{keep + 1} |
  while read -r tag; do
    [ "$tag" = {shlex.quote(current_tag)} ] || docker image rm "{repository}:$tag" >/dev/null || true
  done
docker image prune -f >/dev/null
docker builder prune -f --filter until=168h >/dev/null 2>&1 || true
echo "kept the last {keep} images of {repository}\""""
    return guarded("pruning old images", body, "Nothing is broken; old images take disk space until the next deploy.")
