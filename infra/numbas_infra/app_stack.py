"""The containers on the server, deployed by the Docker provider over SSH once cloud-init has
finished, and the deploy's steps (steps.py) run over SSH between them:

    prepare ─▶ PostgreSQL, Redis ─▶ migrate (backup first) ─▶ daphne × N, huey × M (a new
    generation next to the old one) ─▶ nginx files + reload ─▶ nginx, certbot ─▶ verify ─▶ prune
    ... then Pulumi removes the previous generation's containers (gracefully: daphne's websockets
    close and reconnect to the new ones; Huey finishes its running tasks).

What each container runs comes from spec.py."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pulumi
import pulumi_command as command
import pulumi_docker as docker
import pulumi_random as random
import pulumi_tls as tls

from numbas_infra import backup, nginx_config, postgres_tuning, spec, steps
from numbas_infra.config import StackConfig
from numbas_infra.hetzner import Server

REPO = Path(__file__).resolve().parents[2]
TLS_DIR = "/etc/nginx/tls"  # cert.pem / key.pem: links to the Let's Encrypt files once issued
BOOTSTRAP_DIR = f"{spec.NGINX_DIR}/bootstrap"
ERRORS_DIR = f"{spec.NGINX_DIR}/errors"
NGINX_CONF = f"{spec.NGINX_DIR}/nginx.conf"
UPSTREAMS_CONF = f"{spec.NGINX_DIR}/upstreams.conf"
NGINX_START_PATH = f"{spec.NGINX_DIR}/start.sh"
# A self-signed certificate that serves until Let's Encrypt's is issued. Long-lived on purpose:
# the tls provider replaces a certificate once it is due for renewal, and nothing here needs that.
BOOTSTRAP_CERT_HOURS = 24 * 365 * 20


def image_tag() -> str:
    """A tag that changes exactly when what goes into the app image changes."""
    digest = hashlib.sha256()
    paths = [REPO / "app" / "Dockerfile", REPO / "package.json", REPO / "package-lock.json"]
    paths += sorted(p for p in (REPO / "app").rglob("*") if p.is_file() and "__pycache__" not in p.parts
                    and "tests" not in p.parts)
    for path in paths:
        if path.exists():
            digest.update(str(path.relative_to(REPO)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _health(check: spec.HealthCheck) -> docker.ContainerHealthcheckArgs:
    return docker.ContainerHealthcheckArgs(
        tests=check.test, interval=spec.go_duration(check.interval_s), timeout=spec.go_duration(check.timeout_s),
        retries=check.retries, start_period=spec.go_duration(check.start_period_s),
    )


def _mounts(mounts: tuple[spec.Mount, ...]) -> list[docker.ContainerMountArgs]:
    return [
        docker.ContainerMountArgs(target=m.target, source=m.source, read_only=m.read_only,
                                  type="bind")
        for m in mounts
    ]


def _envs(plain: dict[str, str], secret: dict[str, pulumi.Output[str]]) -> pulumi.Output[list[str]]:
    """Container environment as KEY=value strings; the whole list is a secret when any value is."""
    keys = sorted(secret)
    return pulumi.Output.secret(pulumi.Output.all(*(secret[k] for k in keys)).apply(
        lambda values: [f"{k}={v}" for k, v in sorted(plain.items())] + [f"{k}={v}" for k, v in zip(keys, values)]
    ))


NGINX_START = """\
#!/bin/sh
# Serve with the bootstrap certificate until Let's Encrypt's exists, then switch; reload every
# 6 hours so renewed certificates are picked up.
set -eu
conf=%(conf)s
live="/etc/letsencrypt/live/$DOMAIN"
link() {
  if [ -s "$live/fullchain.pem" ] && [ -s "$live/privkey.pem" ]; then
    src_cert="$live/fullchain.pem"; src_key="$live/privkey.pem"
  else
    src_cert="%(bootstrap)s/cert.pem"; src_key="%(bootstrap)s/key.pem"
  fi
  mkdir -p %(tls)s
  if [ "$(readlink %(tls)s/cert.pem || true)" != "$src_cert" ]; then
    ln -sfn "$src_cert" %(tls)s/cert.pem; ln -sfn "$src_key" %(tls)s/key.pem; return 0
  fi
  return 1
}
link || true
(
  n=0
  while sleep 300; do
    n=$((n + 1))
    if link || [ $((n %% 72)) -eq 0 ]; then nginx -s reload -c "$conf"; fi
  done
) &
exec nginx -c "$conf" -g 'daemon off;'
""" % {"bootstrap": BOOTSTRAP_DIR, "tls": TLS_DIR, "conf": NGINX_CONF}

# Renewal every 12 h; a failure waits 5 min, then twice as long each time (at most 12 h), so a
# broken DNS record or firewall does not run into Let's Encrypt's rate limits.
CERTBOT_LOOP = (
    'trap exit TERM; delay=300; while :; do '
    'if certbot certonly --webroot -w {webroot} -d "$DOMAIN" -d "$EXAM_DOMAIN" --cert-name "$DOMAIN" '
    '--email "$ACME_EMAIL" --agree-tos --non-interactive --keep-until-expiring --expand {staging}; '
    'then delay=300; sleep 12h & wait $!; '
    'else echo "certbot failed; next attempt in $delay s"; sleep "$delay" & wait $!; '
    'delay=$((delay * 2)); [ "$delay" -le 43200 ] || delay=43200; fi; '
    'done'
)


def ssh_dir(cfg: StackConfig) -> str:
    """Where the Docker provider's ssh finds the deploy key and the pinned host key: the same
    string on every machine (ssh expands ~), one directory per project and stack."""
    return f"~/.ssh/pulumi/{cfg.name}"


def write_ssh_files(directory: str, *, alias_pattern: str, deploy_key: str, host_key: str) -> str:
    """Written at every run, from the state: any operator's machine or CI can deploy, with no file
    left over from the first deploy. Returns the directory. (~ is $HOME here and the passwd entry's
    home for ssh: the same on any ordinary account.)"""
    path = Path(os.path.expanduser(directory))
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)
    for name, content in (("deploy_key", deploy_key.strip() + "\n"),
                          ("known_hosts", f"{alias_pattern} {host_key.strip()}\n")):
        temporary = path / f".{name}.{os.getpid()}"
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(content)
        os.replace(temporary, path / name)
    return directory


def docker_ssh_opts(directory: str, *, address: str, alias: str) -> list[str]:
    """ssh's options for the Docker provider: connect to `address` as the host named `alias` in the
    provider's URL, with the deploy key only, checking the pinned host key under the alias (ssh
    would otherwise look it up under the address)."""
    return ["-i", f"{directory}/deploy_key", "-o", f"UserKnownHostsFile={directory}/known_hosts",
            "-o", f"HostName={address}", "-o", f"HostKeyAlias={alias}", "-o", "StrictHostKeyChecking=yes",
            "-o", "IdentitiesOnly=yes", "-o", "ConnectTimeout=30"]


def _digest(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]


class AppStack(pulumi.ComponentResource):
    def __init__(self, name: str, cfg: StackConfig, *, server: Server, opts: pulumi.ResourceOptions | None = None):
        super().__init__("numbas-lti:app:AppStack", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        host = server.ipv4_address
        server_id = server.server_id

        # 1. The deploy's SSH connection: the deploy key and the server's host key, both from the
        #    state (tls.PrivateKey), the host key pinned.
        self.connection = server.connection

        def step(step_name: str, script, *, triggers: list, depends_on=(), stdin=None) -> command.remote.Command:
            return command.remote.Command(
                f"{name}-{step_name}", connection=self.connection, create=script, update=script, stdin=stdin,
                triggers=[server_id, *triggers],  # every step runs again on a new server
                opts=pulumi.ResourceOptions(parent=self, depends_on=list(depends_on)),
            )

        #    Wait until cloud-init has installed Docker and mounted the volumes.
        #    After the admins' keys are in place and the volumes attached (their release, on a
        #    replacement or destroy, then comes after every container here is gone).
        self.prepare = step("prepare", steps.prepare_script(), triggers=[],
                            depends_on=[*server.attachments, server.release_volumes, server.authorized_keys])

        # 2. The Docker provider uses the system ssh. Its host names the server (id included), so a
        #    replaced server is a new provider and everything on it is created again; ssh reaches
        #    it by address (HostName) and checks the pinned key under the alias.
        alias = server_id.apply(lambda i: f"{cfg.name}-server-{i}")
        directory = ssh_dir(cfg)
        self.ssh_files = pulumi.Output.all(server.deploy_key.private_key_openssh, server.host_key.public_key_openssh).apply(
            lambda keys: write_ssh_files(directory, alias_pattern=f"{cfg.name}-server-*", deploy_key=keys[0],
                                         host_key=keys[1]))
        # The host is derived from the prepare step's output: the provider (and every container)
        # cannot be used before cloud-init is done (a provider's depends_on is not honoured).
        self.docker_host = pulumi.Output.all(alias, self.prepare.stdout).apply(lambda v: f"ssh://root@{v[0]}")
        self.provider = docker.Provider(
            f"{name}-docker",
            host=self.docker_host,
            # Previews (CI, outside the admins' networks) diff against the state without
            # reaching the server; `pulumi up` connects as soon as it changes something.
            disable_docker_daemon_check=True,
            ssh_opts=pulumi.Output.all(self.ssh_files, host, alias).apply(
                lambda v: docker_ssh_opts(v[0], address=v[1], alias=v[2])),
            opts=child,
        )
        on_server = pulumi.ResourceOptions(parent=self, provider=self.provider)

        # 3. Secrets: generated once, secret in state and outputs.
        self.db_password = random.RandomPassword(f"{name}-db-password", length=32, special=False, opts=child)
        self.secret_key = random.RandomPassword(f"{name}-secret-key", length=64, special=False, opts=child)
        # The random provider marks these secret too; wrapping them says so here, whatever it does.
        self.database_password = pulumi.Output.secret(self.db_password.result)
        self.django_secret_key = pulumi.Output.secret(self.secret_key.result)
        database_url = self.database_password.apply(spec.database_url)
        app_secrets = {"DATABASE_URL": database_url, "SECRET_KEY": self.django_secret_key}
        if cfg.email_url is not None:
            app_secrets["EMAIL_URL"] = cfg.email_url

        # 4. Network and images.
        # Every Docker resource also names the server in its inputs (a label, a trigger, a build
        # argument), so that a replaced server gets all of them again whatever the provider makes of
        # its changed host (docker_container and docker_network arguments all force a replacement).
        on_this_server = {spec.SERVER_LABEL: server_id}
        self.network = docker.Network(
            f"{name}-network", name=spec.NETWORK, driver="bridge",
            labels=[docker.NetworkLabelArgs(label=spec.SERVER_LABEL, value=server_id)], opts=on_server)
        networks = [docker.ContainerNetworksAdvancedArgs(name=self.network.name)]
        remote = {
            role: docker.RemoteImage(f"{name}-{role}-image", name=ref, keep_locally=True, triggers=on_this_server,
                                     opts=on_server)
            for role, ref in (("postgres", spec.POSTGRES_IMAGE), ("redis", spec.REDIS_IMAGE),
                              ("nginx", spec.NGINX_IMAGE), ("certbot", spec.CERTBOT_IMAGE))
        }
        self.image_tag = image_tag()
        self.app_image = docker.Image(
            f"{name}-app-image",
            image_name=f"{spec.APP_IMAGE}:{self.image_tag}",
            build=docker.DockerBuildArgs(context=str(REPO), dockerfile=str(REPO / "app" / "Dockerfile"),
                                         platform="linux/amd64", args=on_this_server),
            skip_push=True, build_on_preview=False,
            opts=on_server,
        )

        self.dependencies: dict[str, list[str]] = {}  # container name -> what it waits for (tests read it)

        def container(spec_: spec.ContainerSpec, image, *, envs=None, depends_on=(), replace_in_place: bool,
                      name_output=None, **kwargs) -> docker.Container:
            """replace_in_place: a container with a fixed name or fixed ports is removed before its
            replacement starts; the others (daphne, huey: a name per generation) start first."""
            self.dependencies[spec_.name] = [d._name for d in depends_on]
            resource = spec_.name.removeprefix(spec.PROJECT + "-")
            if spec_.role in ("daphne", "huey"):
                resource = f"{spec_.role}-{spec_.name.rsplit('-', 1)[1]}"  # stable: the generation is in `name`
            return docker.Container(
                f"{name}-{resource}",
                name=name_output if name_output is not None else spec_.name,
                image=image, command=spec_.command or None, envs=envs,
                mounts=_mounts(spec_.mounts) or None, networks_advanced=networks,
                healthcheck=_health(spec_.health) if spec_.health else None,
                restart="no" if spec_.one_shot else "unless-stopped",
                labels=[docker.ContainerLabelArgs(label=spec.ROLE_LABEL, value=spec_.role),
                        docker.ContainerLabelArgs(label=spec.SERVER_LABEL, value=server_id)],
                log_opts={"max-size": "10m", "max-file": "5"},
                opts=pulumi.ResourceOptions(
                    parent=self, provider=self.provider, depends_on=list(depends_on),
                    delete_before_replace=replace_in_place,
                    # Secret environments (built by _envs) say so where policies can see it.
                    additional_secret_outputs=["envs"] if isinstance(envs, pulumi.Output) else None,
                ),
                **kwargs,
            )

        # 5. Data services, sized for the server and the pools that use them.
        app_settings = spec.AppSettings(domain=cfg.domain, exam_domain=cfg.exam_domain, exam_mathjax=cfg.exam_mathjax,
                                        instance_name=cfg.instance_name, from_email=cfg.from_email,
                                        admin_emails=cfg.admin_emails)
        self.budget = spec.connection_budget(daphne_replicas=cfg.daphne_replicas, huey_replicas=cfg.huey_replicas,
                                             huey_workers=app_settings.huey_workers)
        self.postgres_settings = postgres_tuning.postgres_memory_settings(
            cfg.server_memory_gb, max_connections=self.budget.max_connections)
        tuning = [arg for k, v in sorted(self.postgres_settings.items()) for arg in ("-c", f"{k}={v}")]
        postgres_env = {"POSTGRES_USER": "numbas_lti", "POSTGRES_DB": "numbas_lti", "PGDATA": spec.POSTGRES_PGDATA}
        postgres_secrets = {"POSTGRES_PASSWORD": self.database_password}
        self.backup = None
        if cfg.offsite is None:
            postgres = spec.ContainerSpec(
                spec.container_name("postgres"), "postgres", ["postgres", *tuning], {},
                (spec.Mount(f"{spec.DATA_MOUNT}/postgres", spec.POSTGRES_DATA_TARGET),), health=spec.POSTGRES_HEALTH)
            postgres_image, uploads = remote["postgres"].image_id, None
        else:
            # Backups off the server (backup.py): PostgreSQL from the image with pgBackRest, archiving
            # its WAL continuously; the backup container (same image) takes the scheduled backups.
            self.backup_settings = cfg.offsite.settings
            self.backup_cipher_pass = random.RandomPassword(f"{name}-backup-cipher-pass", length=48, special=False,
                                                            opts=child)
            self.backup_restic_password = random.RandomPassword(f"{name}-backup-restic-password", length=48,
                                                                special=False, opts=child)
            backup_secrets = backup.secret_environment(
                s3_key_id=cfg.offsite.access_key, s3_key_secret=cfg.offsite.secret_key,
                cipher_pass=pulumi.Output.secret(self.backup_cipher_pass.result),
                restic_password=pulumi.Output.secret(self.backup_restic_password.result))
            self.backup_image = docker.Image(
                f"{name}-backup-image", image_name=f"{spec.BACKUP_IMAGE}:{backup.image_tag()}",
                build=docker.DockerBuildArgs(context=str(REPO / spec.BACKUP_BUILD_CONTEXT),
                                             dockerfile=str(backup.DOCKERFILE), platform="linux/amd64",
                                             args=on_this_server),
                skip_push=True, build_on_preview=False, opts=on_server)
            postgres = spec.ContainerSpec(
                spec.container_name("postgres"), "postgres",
                [*spec.postgres_backup_command(self.backup_settings), *tuning], {}, spec.POSTGRES_BACKUP_MOUNTS,
                health=spec.POSTGRES_HEALTH)
            postgres_env |= spec.postgres_backup_environment()
            postgres_secrets |= {k: backup_secrets[k] for k in backup.POSTGRES_SECRET_ENV}
            postgres_image = self.backup_image.image_name
            uploads = [docker.ContainerUploadArgs(file=backup.PGBACKREST_CONF,
                                                  content=spec.pgbackrest_conf(self.backup_settings))]
        self.postgres = container(
            postgres, postgres_image, envs=_envs(postgres_env, postgres_secrets), uploads=uploads,
            wait=True, replace_in_place=True, shm_size=256, stop_timeout=120, destroy_grace_seconds=120,
        )
        if cfg.offsite is not None:
            backup_spec = spec.backup_container(self.backup_settings)
            self.backup = container(
                backup_spec, self.backup_image.image_name, envs=_envs(backup_spec.env, backup_secrets),
                uploads=[docker.ContainerUploadArgs(file=backup.PGBACKREST_CONF,
                                                    content=spec.pgbackrest_conf(self.backup_settings))],
                depends_on=[self.postgres], replace_in_place=True, stop_timeout=120, destroy_grace_seconds=120,
            )
        redis = spec.ContainerSpec(
            spec.container_name("redis"), "redis", ["redis-server", "--appendonly", "yes", "--dir", "/data"], {},
            (spec.Mount(f"{spec.DATA_MOUNT}/redis", "/data"),), health=spec.REDIS_HEALTH,
        )
        self.redis = container(redis, remote["redis"].image_id, wait=True, replace_in_place=True)

        self.database_password_step = step(
            "database-password", steps.database_password_script(container=postgres.name, user="numbas_lti",
                                                                database="numbas_lti"),
            stdin=pulumi.Output.secret(self.database_password.apply(lambda p: steps.database_password_sql("numbas_lti", p))),
            triggers=[self.database_password.apply(lambda p: _digest(["database-password", p]))],
            depends_on=[self.postgres],
        )

        # 6. The app: migrate first (its failure stops the deploy here, with its output), then a
        #    new generation of daphne and huey next to the running one.
        specs = spec.app_containers(app_settings, daphne_replicas=cfg.daphne_replicas, huey_replicas=cfg.huey_replicas,
                                    backups_expected=cfg.offsite is not None)
        migrate_spec, long_running = specs[0], specs[1:]
        app_env = _envs(migrate_spec.env, app_secrets)
        self.migrate = step(
            "migrate",
            steps.migrate_script(image=f"{spec.APP_IMAGE}:{self.image_tag}", network=spec.NETWORK,
                                 mounts=migrate_spec.mounts,
                                 backup_container=self.backup and spec.container_name("backup")),
            stdin=app_env.apply(lambda lines: steps.env_file_lines(dict(line.split("=", 1) for line in lines))),
            triggers=[self.app_image.image_name],
            depends_on=[self.postgres, self.redis, self.app_image, self.database_password_step,
                        *([self.backup] if self.backup else [])],
        )
        # A new generation whenever anything that replaces an app container changes (image,
        # definitions, secrets): its names are new, so it starts beside the old one.
        definitions = [[s.role, s.command, s.env, [m.__dict__ for m in s.mounts], s.health and s.health.__dict__]
                       for s in long_running]
        self.generation = random.RandomId(
            f"{name}-generation", byte_length=3,
            keepers={"image": self.app_image.image_name, "definitions": _digest(definitions),
                     "secrets": pulumi.Output.secret(pulumi.Output.all(*app_secrets.values()).apply(_digest))},
            opts=child,
        )
        self.daphnes, self.hueys = [], []
        for s in long_running:
            index = int(s.name.rsplit("-", 1)[1])
            generated = self.generation.hex.apply(lambda g, role=s.role, i=index: spec.container_name(f"{role}-{g}", i))
            stop = ({"stop_signal": spec.DAPHNE_STOP_SIGNAL, "stop_timeout": spec.DAPHNE_STOP_GRACE_S,
                     "destroy_grace_seconds": spec.DAPHNE_STOP_GRACE_S} if s.role == "daphne" else
                    {"stop_signal": spec.HUEY_STOP_SIGNAL, "stop_timeout": spec.HUEY_STOP_GRACE_S,
                     "destroy_grace_seconds": spec.HUEY_STOP_GRACE_S})
            c = container(s, self.app_image.image_name, envs=_envs(s.env, app_secrets), depends_on=[self.migrate],
                          name_output=generated, wait=True, wait_timeout=180, replace_in_place=False, **stop)
            (self.daphnes if s.role == "daphne" else self.hueys).append(c)

        # 7. nginx's files (config, upstream list, bootstrap certificate, error pages), installed and
        #    reloaded by a step: new daphne containers join nginx without a new nginx.
        self.bootstrap_key = tls.PrivateKey(f"{name}-bootstrap-key", algorithm="ECDSA", ecdsa_curve="P256", opts=child)
        self.bootstrap_cert = tls.SelfSignedCert(
            f"{name}-bootstrap-cert", private_key_pem=self.bootstrap_key.private_key_pem,
            subject=tls.SelfSignedCertSubjectArgs(common_name=cfg.domain), dns_names=[cfg.domain, cfg.exam_domain],
            validity_period_hours=BOOTSTRAP_CERT_HOURS, early_renewal_hours=0,
            allowed_uses=["digital_signature", "key_encipherment", "server_auth"],
            opts=child,
        )
        self.nginx_conf = nginx_config.render_nginx_conf(
            domain=cfg.domain, exam_domain=cfg.exam_domain, exam_mathjax=cfg.exam_mathjax,
            upstreams=None, upstreams_file=UPSTREAMS_CONF,
            certificate=f"{TLS_DIR}/cert.pem", certificate_key=f"{TLS_DIR}/key.pem",
            # +1 MB for the form around the file: Django, not nginx, refuses an upload that is too large.
            max_body_mb=app_settings.max_upload_mb + 1, errors_dir=ERRORS_DIR,
            # Docker's DNS: a daphne container restarted with a new address is found again.
            resolver="127.0.0.11",
            # Docker disables IPv6 inside containers; it forwards the host's IPv6 port to IPv4.
            ipv6=False,
        )
        self.upstreams_conf = pulumi.Output.all(*(c.name for c in self.daphnes)).apply(
            lambda names: nginx_config.render_upstream_servers([f"{n}:{spec.DAPHNE_PORT}" for n in names],
                                                               resolve=True) + "\n")
        errors = sorted((REPO / "nginx" / "errors").glob("*.html"))
        prefix = spec.NGINX_DIR + "/"
        bundle = pulumi.Output.all(self.upstreams_conf, self.bootstrap_cert.cert_pem,
                                   self.bootstrap_key.private_key_pem).apply(lambda v: steps.tar_bundle({
            NGINX_CONF.removeprefix(prefix): (self.nginx_conf, 0o644),
            UPSTREAMS_CONF.removeprefix(prefix): (v[0], 0o644),
            NGINX_START_PATH.removeprefix(prefix): (NGINX_START, 0o755),
            f"{BOOTSTRAP_DIR.removeprefix(prefix)}/cert.pem": (v[1], 0o644),
            f"{BOOTSTRAP_DIR.removeprefix(prefix)}/key.pem": (v[2], 0o600),
            **{f"{ERRORS_DIR.removeprefix(prefix)}/{p.name}": (p.read_text(), 0o644) for p in errors},
        }))
        nginx_name = spec.container_name("nginx")
        self.nginx_files = step(
            "nginx-config", steps.nginx_config_script(container=nginx_name, conf=NGINX_CONF),
            stdin=pulumi.Output.secret(bundle),  # it carries the bootstrap key
            triggers=[bundle.apply(steps.bundle_digest)], depends_on=[*self.daphnes, self.prepare],
        )
        nginx = spec.ContainerSpec(
            nginx_name, "nginx", ["/bin/sh", NGINX_START_PATH], {},
            (spec.Mount(spec.ETC_DIR, spec.ETC_DIR, read_only=True),
             spec.Mount(spec.STATIC_VOLUME, spec.STATIC_ROOT, read_only=True),
             spec.Mount(f"{spec.FILES_MOUNT}/media", spec.MEDIA_ROOT, read_only=True),
             spec.Mount(f"{spec.FILES_MOUNT}/private", spec.PRIVATE_ROOT, read_only=True),
             spec.Mount(spec.CERTS_VOLUME, spec.CERT_DIR, read_only=True),
             spec.Mount(spec.ACME_VOLUME, spec.ACME_WEBROOT, read_only=True)),
            ports=((80, 80), (443, 443)), health=spec.NGINX_HEALTH,
        )
        # Published on the host's IPv4 and IPv6 (the AAAA record points here); the provider's
        # default binds 0.0.0.0 only.
        self.nginx = container(
            nginx, remote["nginx"].image_id,
            envs=[f"DOMAIN={cfg.domain}"],
            ports=[docker.ContainerPortArgs(internal=i, external=e, ip=ip) for e, i in nginx.ports
                   for ip in ("0.0.0.0", "::")],
            depends_on=[self.nginx_files], replace_in_place=True,
        )
        certbot = spec.ContainerSpec(
            spec.container_name("certbot"), "certbot",
            [CERTBOT_LOOP.format(webroot=spec.ACME_WEBROOT, staging="--staging " if cfg.acme_staging else "")],
            {}, (spec.Mount(spec.CERTS_VOLUME, spec.CERT_DIR), spec.Mount(spec.ACME_VOLUME, spec.ACME_WEBROOT)),
            health=spec.CERTBOT_HEALTH,
        )
        self.certbot = container(
            certbot, remote["certbot"].image_id,
            envs=[f"DOMAIN={cfg.domain}", f"EXAM_DOMAIN={cfg.exam_domain}", f"ACME_EMAIL={cfg.acme_email}"],
            entrypoints=["sh", "-c"], depends_on=[self.nginx], replace_in_place=True,
        )

        # 8. Verify through nginx on the public name, then drop old images (a few kept for rollback).
        self.verify = step(
            "verify", self.daphnes[0].name.apply(lambda probe: steps.verify_script(
                domain=cfg.domain, probe_container=probe, nginx_container=nginx_name)),
            triggers=[self.generation.hex, self.nginx_files.id], depends_on=[self.nginx, self.nginx_files, *self.hueys],
        )
        self.prune = step("prune", steps.prune_script(repository=spec.APP_IMAGE, current_tag=self.image_tag),
                          triggers=[self.app_image.image_name], depends_on=[self.verify])
        self.register_outputs({})
