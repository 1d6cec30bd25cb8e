"""The containers on the server, deployed by the Docker provider over SSH once cloud-init has
finished: PostgreSQL, Redis, the migrate step, daphne × N, huey × M, nginx (the only one that
publishes ports) and certbot. What each runs comes from spec.py."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pulumi
import pulumi_command as command
import pulumi_docker as docker
import pulumi_random as random
import pulumi_tls as tls

from numbas_infra import nginx_config, spec
from numbas_infra.config import StackConfig
from numbas_infra.hetzner import Server

REPO = Path(__file__).resolve().parents[2]
TLS_DIR = "/etc/nginx/tls"  # cert.pem / key.pem: links to the Let's Encrypt files once issued
BOOTSTRAP_DIR = "/etc/nginx/bootstrap"
ERRORS_DIR = "/usr/share/nginx/errors"
# cloud-init exits 2 for "done, with recoverable errors": the server is usable.
CLOUD_INIT_WAIT = "cloud-init status --wait >/dev/null; s=$?; [ $s -eq 0 ] || [ $s -eq 2 ]"


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
        tests=check.test, interval=f"{check.interval_s}s", timeout=f"{check.timeout_s}s",
        retries=check.retries, start_period=f"{check.start_period_s}s",
    )


def _mounts(mounts: tuple[spec.Mount, ...]) -> list[docker.ContainerMountArgs]:
    return [
        docker.ContainerMountArgs(target=m.target, source=m.source, read_only=m.read_only,
                                  type="bind" if m.source.startswith("/") else "volume")
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
    if link || [ $((n %% 72)) -eq 0 ]; then nginx -s reload; fi
  done
) &
exec nginx -g 'daemon off;'
""" % {"bootstrap": BOOTSTRAP_DIR, "tls": TLS_DIR}

CERTBOT_LOOP = (
    'trap exit TERM; while :; do '
    'certbot certonly --webroot -w {webroot} -d "$DOMAIN" -d "$EXAM_DOMAIN" --cert-name "$DOMAIN" '
    '--email "$ACME_EMAIL" --agree-tos --non-interactive --keep-until-expiring --expand {staging}'
    '&& sleep 12h & wait $!; '
    '[ -s "/etc/letsencrypt/live/$DOMAIN/fullchain.pem" ] || sleep 300; '
    'done'
)


class AppStack(pulumi.ComponentResource):
    def __init__(self, name: str, cfg: StackConfig, *, server: Server, opts: pulumi.ResourceOptions | None = None):
        super().__init__("numbas-lti:app:AppStack", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        host = server.ipv4_address

        # 1. Wait until cloud-init has installed Docker and mounted the volumes, checking the
        #    server's host key (pinned in cloud-init) on the way.
        self.cloud_init_wait = command.remote.Command(
            f"{name}-cloud-init-wait",
            connection=command.remote.ConnectionArgs(
                host=host, user="root", private_key=server.deploy_key.private_key_openssh,
                host_key=server.host_key.public_key_openssh.apply(str.strip), dial_error_limit=30,
            ),
            create=CLOUD_INIT_WAIT,
            triggers=[server.server.id],
            opts=pulumi.ResourceOptions(parent=self, depends_on=server.attachments),
        )
        # 2. The Docker provider uses the system ssh: give it the deploy key and the pinned host key.
        ssh_dir = f"$HOME/.ssh/numbas-lti-{cfg.stack}"
        self.ssh_files = command.local.Command(
            f"{name}-ssh-files",
            create=(f'set -eu; umask 077; mkdir -p "{ssh_dir}"; printf "%s\\n" "$DEPLOY_KEY" > "{ssh_dir}/deploy_key"; '
                    f'printf "%s %s\\n" "$HOST" "$HOST_KEY" > "{ssh_dir}/known_hosts"; echo "{ssh_dir}"'),
            environment={
                "DEPLOY_KEY": server.deploy_key.private_key_openssh,
                "HOST": host,
                "HOST_KEY": server.host_key.public_key_openssh.apply(str.strip),
            },
            triggers=[host, server.host_key.id, server.deploy_key.id],
            opts=child,
        )
        # The host is derived from the wait's output: the provider (and every container) cannot be
        # used before cloud-init is done (a provider's depends_on is not honoured).
        self.docker_host = pulumi.Output.all(host, self.cloud_init_wait.stdout).apply(lambda v: f"ssh://root@{v[0]}")
        self.provider = docker.Provider(
            f"{name}-docker",
            host=self.docker_host,
            # Previews (CI, outside the admins' networks) diff against the state without
            # reaching the server; `pulumi up` connects as soon as it changes something.
            disable_docker_daemon_check=True,
            ssh_opts=self.ssh_files.stdout.apply(lambda d: [
                "-i", f"{d.strip()}/deploy_key", "-o", f"UserKnownHostsFile={d.strip()}/known_hosts",
                "-o", "StrictHostKeyChecking=yes", "-o", "IdentitiesOnly=yes",
            ]),
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

        # 4. Network, volumes, images.
        self.network = docker.Network(f"{name}-network", name=spec.NETWORK, driver="bridge", opts=on_server)
        networks = [docker.ContainerNetworksAdvancedArgs(name=self.network.name)]
        self.volumes = {
            v: docker.Volume(f"{name}-{v}", name=v, opts=on_server)
            for v in (spec.STATIC_VOLUME, spec.CERTS_VOLUME, spec.ACME_VOLUME)
        }
        remote = {
            role: docker.RemoteImage(f"{name}-{role}-image", name=ref, keep_locally=True, opts=on_server)
            for role, ref in (("postgres", spec.POSTGRES_IMAGE), ("redis", spec.REDIS_IMAGE),
                              ("nginx", spec.NGINX_IMAGE), ("certbot", spec.CERTBOT_IMAGE))
        }
        self.app_image = docker.Image(
            f"{name}-app-image",
            image_name=f"{spec.APP_IMAGE}:{image_tag()}",
            build=docker.DockerBuildArgs(context=str(REPO), dockerfile=str(REPO / "app" / "Dockerfile"),
                                         platform="linux/amd64"),
            skip_push=True, build_on_preview=False,
            opts=on_server,
        )

        self.dependencies: dict[str, list[str]] = {}  # container name -> what it waits for (tests read it)

        def container(spec_: spec.ContainerSpec, image, *, envs=None, depends_on=(), **kwargs) -> docker.Container:
            self.dependencies[spec_.name] = [d._name for d in depends_on]
            return docker.Container(
                f"{name}-{spec_.name.removeprefix(spec.PROJECT + '-')}",
                name=spec_.name, image=image, command=spec_.command or None, envs=envs,
                mounts=_mounts(spec_.mounts) or None, networks_advanced=networks,
                healthcheck=_health(spec_.health) if spec_.health else None,
                restart="no" if spec_.one_shot else "unless-stopped",
                log_opts={"max-size": "10m", "max-file": "5"},
                opts=pulumi.ResourceOptions(
                    parent=self, provider=self.provider, depends_on=list(depends_on), delete_before_replace=True,
                    # Secret environments (built by _envs) say so where policies can see it.
                    additional_secret_outputs=["envs"] if isinstance(envs, pulumi.Output) else None,
                ),
                **kwargs,
            )

        # 5. Data services.
        postgres = spec.ContainerSpec(
            spec.container_name("postgres"), "postgres", [], {},
            (spec.Mount(f"{spec.DATA_MOUNT}/postgres", "/var/lib/postgresql/data"),), health=spec.POSTGRES_HEALTH,
        )
        self.postgres = container(
            postgres, remote["postgres"].image_id,
            envs=_envs({"POSTGRES_USER": "numbas_lti", "POSTGRES_DB": "numbas_lti", "PGDATA": "/var/lib/postgresql/data/pgdata"},
                       {"POSTGRES_PASSWORD": self.database_password}),
            wait=True,
        )
        redis = spec.ContainerSpec(
            spec.container_name("redis"), "redis", ["redis-server", "--appendonly", "yes", "--dir", "/data"], {},
            (spec.Mount(f"{spec.DATA_MOUNT}/redis", "/data"),), health=spec.REDIS_HEALTH,
        )
        self.redis = container(redis, remote["redis"].image_id, wait=True)

        # 6. The app: migrate first (it must succeed), then daphne and huey.
        app_settings = spec.AppSettings(domain=cfg.domain, exam_domain=cfg.exam_domain, exam_mathjax=cfg.exam_mathjax,
                                        instance_name=cfg.instance_name, from_email=cfg.from_email,
                                        admin_emails=cfg.admin_emails)
        specs = spec.app_containers(app_settings, daphne_replicas=cfg.daphne_replicas, huey_replicas=cfg.huey_replicas)
        migrate_spec, long_running = specs[0], specs[1:]
        self.migrate = container(
            migrate_spec, self.app_image.image_name,
            envs=_envs(migrate_spec.env, app_secrets), depends_on=[self.postgres, self.redis],
            must_run=False, attach=True, logs=True,
        )
        self.daphnes, self.hueys = [], []
        for s in long_running:
            c = container(s, self.app_image.image_name, envs=_envs(s.env, app_secrets), depends_on=[self.migrate],
                          wait=True, wait_timeout=120)
            (self.daphnes if s.role == "daphne" else self.hueys).append(c)

        # 7. nginx (the only published ports) and certbot.
        self.bootstrap_key = tls.PrivateKey(f"{name}-bootstrap-key", algorithm="ECDSA", ecdsa_curve="P256", opts=child)
        self.bootstrap_cert = tls.SelfSignedCert(
            f"{name}-bootstrap-cert", private_key_pem=self.bootstrap_key.private_key_pem,
            subject=tls.SelfSignedCertSubjectArgs(common_name=cfg.domain), dns_names=[cfg.domain, cfg.exam_domain],
            validity_period_hours=24 * 90, allowed_uses=["digital_signature", "key_encipherment", "server_auth"],
            opts=child,
        )
        self.nginx_conf = nginx_config.render_nginx_conf(
            domain=cfg.domain, exam_domain=cfg.exam_domain, exam_mathjax=cfg.exam_mathjax,
            upstreams=spec.daphne_upstreams(cfg.daphne_replicas),
            certificate=f"{TLS_DIR}/cert.pem", certificate_key=f"{TLS_DIR}/key.pem",
            # +1 MB for the form around the file: Django, not nginx, refuses an upload that is too large.
            max_body_mb=app_settings.max_upload_mb + 1, errors_dir=ERRORS_DIR,
            # Docker's DNS: daphne containers replaced with new addresses are found again.
            resolver="127.0.0.11",
            # Docker disables IPv6 inside containers; it forwards the host's IPv6 port to IPv4.
            ipv6=False,
        )
        errors = sorted((REPO / "nginx" / "errors").glob("*.html"))
        nginx = spec.ContainerSpec(
            spec.container_name("nginx"), "nginx", ["/bin/sh", "/docker-entrypoint.d/numbas-lti-start.sh"], {},
            (spec.Mount(spec.STATIC_VOLUME, spec.STATIC_ROOT, read_only=True),
             spec.Mount(f"{spec.FILES_MOUNT}/media", spec.MEDIA_ROOT, read_only=True),
             spec.Mount(f"{spec.FILES_MOUNT}/private", spec.PRIVATE_ROOT, read_only=True),
             spec.Mount(spec.CERTS_VOLUME, spec.CERT_DIR, read_only=True),
             spec.Mount(spec.ACME_VOLUME, spec.ACME_WEBROOT, read_only=True)),
            ports=((80, 80), (443, 443)), health=spec.NGINX_HEALTH,
        )
        self.nginx = container(
            nginx, remote["nginx"].image_id,
            envs=[f"DOMAIN={cfg.domain}"],
            ports=[docker.ContainerPortArgs(internal=i, external=e) for e, i in nginx.ports],
            uploads=[
                docker.ContainerUploadArgs(file="/etc/nginx/nginx.conf", content=self.nginx_conf),
                docker.ContainerUploadArgs(file="/docker-entrypoint.d/numbas-lti-start.sh", content=NGINX_START,
                                           executable=True),
                docker.ContainerUploadArgs(file=f"{BOOTSTRAP_DIR}/cert.pem", content=self.bootstrap_cert.cert_pem),
                docker.ContainerUploadArgs(file=f"{BOOTSTRAP_DIR}/key.pem",
                                           content=pulumi.Output.secret(self.bootstrap_key.private_key_pem)),
                *(docker.ContainerUploadArgs(file=f"{ERRORS_DIR}/{p.name}", content=p.read_text()) for p in errors),
            ],
            depends_on=self.daphnes,
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
            entrypoints=["sh", "-c"], depends_on=[self.nginx],
        )
        self.register_outputs({})
