"""The one place that reads the stack's configuration (`pulumi config`), checks it and says
exactly what to set when something is missing or wrong."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

import pulumi

from numbas_infra import backup

from numbas_infra import server_types

PROJECT = "numbas-lti"
_HOSTNAME = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_SSH_KEY = re.compile(r"^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com) [A-Za-z0-9+/=]+( .*)?$")


@dataclass(frozen=True)
class OffsiteBackups:
    settings: backup.BackupSettings
    access_key: pulumi.Output[str]  # secret
    secret_key: pulumi.Output[str]  # secret


class ConfigError(Exception):
    """Stack configuration that cannot work; the message names the key and the fix."""


@dataclass(frozen=True)
class StackConfig:
    stack: str
    domain: str
    exam_domain: str  # the exam-content host (EXAM_ORIGIN): uploaded exams run there
    exam_mathjax: str  # "local" or "cdn"
    dns_zone: str | None
    location: str
    server_type: str
    image: str
    admin_cidrs: tuple[str, ...]
    ssh_public_keys: tuple[str, ...]
    acme_email: str
    acme_staging: bool
    daphne_replicas: int
    huey_replicas: int
    data_volume_gb: int
    files_volume_gb: int
    instance_name: str
    from_email: str
    admin_emails: tuple[str, ...]
    protect: bool  # delete and rebuild protection on the server and volumes
    backups: bool  # Hetzner's server backups (they never include the volumes)
    offsite: "OffsiteBackups | None"  # PostgreSQL and files to an S3 bucket (backup.py); None: none
    email_url: pulumi.Output[str] | None  # secret

    @property
    def is_production(self) -> bool:
        return self.stack == "prod"

    def in_dns_zone(self, host: str) -> bool:
        return bool(self.dns_zone) and (host == self.dns_zone or host.endswith("." + self.dns_zone))

    @property
    def unmanaged_hosts(self) -> tuple[str, ...]:
        """Host names whose A/AAAA records the operator creates at their DNS provider."""
        return tuple(host for host in (self.domain, self.exam_domain) if not self.in_dns_zone(host))

    @property
    def server(self) -> server_types.ServerType:
        """The chosen server type's size (validated by load())."""
        return server_types.ORDERABLE[self.server_type]

    @property
    def server_memory_gb(self) -> float:
        return self.server.memory_gb

    @property
    def server_vcpus(self) -> int:
        return self.server.vcpus

    @property
    def name(self) -> str:
        """Prefix for cloud resource names: one project, several stacks in one account."""
        return f"{PROJECT}-{self.stack}"


def _set_command(key: str, example: str, secret: bool = False) -> str:
    return f"pulumi config set {'--secret ' if secret else ''}{key} {example}"


def _required(config: pulumi.Config, key: str, example: str) -> str:
    value = config.get(key)
    if value is None or not value.strip():
        raise ConfigError(f"Missing configuration '{PROJECT}:{key}'. Set it with: {_set_command(key, example)}")
    return value.strip()


def _list(config: pulumi.Config, key: str, example: str, *, required: bool) -> tuple[str, ...]:
    raw = config.get_object(key)
    if raw is None:
        if required:
            raise ConfigError(
                f"Missing configuration '{PROJECT}:{key}' (a list). Set it with: "
                f"pulumi config set --path '{key}[0]' {example}"
            )
        return ()
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not all(isinstance(v, str) and v.strip() for v in raw):
        raise ConfigError(f"'{PROJECT}:{key}' must be a list of strings. Set it with: "
                          f"pulumi config set --path '{key}[0]' {example}")
    if required and not raw:
        raise ConfigError(f"'{PROJECT}:{key}' must not be empty. Set it with: pulumi config set --path '{key}[0]' {example}")
    return tuple(v.strip() for v in raw)


def _int(config: pulumi.Config, key: str, default: int, low: int, high: int) -> int:
    try:
        value = config.get_int(key)
    except Exception as error:  # pulumi raises ConfigTypeError for non-integers
        raise ConfigError(f"'{PROJECT}:{key}' must be a whole number between {low} and {high}. "
                          f"Set it with: {_set_command(key, str(default))}") from error
    value = default if value is None else value
    if not low <= value <= high:
        raise ConfigError(f"'{PROJECT}:{key}' is {value}; it must be between {low} and {high}. "
                          f"Set it with: {_set_command(key, str(default))}")
    return value


def _bool(config: pulumi.Config, key: str, default: bool) -> bool:
    try:
        value = config.get_bool(key)
    except Exception as error:
        raise ConfigError(f"'{PROJECT}:{key}' must be true or false. Set it with: "
                          f"{_set_command(key, str(default).lower())}") from error
    return default if value is None else value


def _server_type(config: pulumi.Config) -> tuple[str, str]:
    """(location, server type), both checked against server_types.py."""
    location = (config.get("location") or "nbg1").strip().lower()
    if location not in server_types.LOCATIONS:
        raise ConfigError(f"'{PROJECT}:location' is '{location}'; Hetzner's locations are "
                          f"{', '.join(server_types.LOCATIONS)}. Set it with: {_set_command('location', 'nbg1')}")
    name = (config.get("serverType") or server_types.DEFAULT).strip().lower()
    try:
        server_types.check(name, location)
    except server_types.ServerTypeError as error:
        raise ConfigError(f"'{PROJECT}:serverType' is {name} in {location}: {error} "
                          f"Set it with: {_set_command('serverType', error.suggestion)}") from error
    return location, name


def load(config: pulumi.Config | None = None, stack: str | None = None) -> StackConfig:
    config = config or pulumi.Config(PROJECT)
    stack = stack or pulumi.get_stack()
    domain = _required(config, "domain", "numbas.example.ac.uk").lower()
    if not _HOSTNAME.match(domain):
        raise ConfigError(f"'{PROJECT}:domain' is '{domain}', which is not a host name. "
                          f"Set it with: {_set_command('domain', 'numbas.example.ac.uk')}")
    exam_domain = (config.get("examDomain") or "").strip().lower() or f"exams.{domain}"
    if not _HOSTNAME.match(exam_domain) or exam_domain == domain:
        raise ConfigError(f"'{PROJECT}:examDomain' is '{exam_domain}'; it must be a host name of its own for exam files "
                          f"(not the site's). Set it with: {_set_command('examDomain', 'exams.' + domain)}")
    exam_mathjax = (config.get("examMathjax") or "local").strip().lower()
    if exam_mathjax not in ("local", "cdn"):
        raise ConfigError(f"'{PROJECT}:examMathjax' must be local or cdn. Set it with: {_set_command('examMathjax', 'local')}")
    dns_zone = (config.get("dnsZone") or "").strip().lower() or None
    if dns_zone and not (domain == dns_zone or domain.endswith("." + dns_zone)):
        raise ConfigError(f"'{PROJECT}:domain' ({domain}) is not inside '{PROJECT}:dnsZone' ({dns_zone}). "
                          f"Set the zone that contains the domain: {_set_command('dnsZone', 'example.ac.uk')}")
    admin_cidrs = _list(config, "adminCidrs", "203.0.113.0/24", required=True)
    for cidr in admin_cidrs:
        try:
            network = ipaddress.ip_network(cidr, strict=False)
        except ValueError as error:
            raise ConfigError(f"'{PROJECT}:adminCidrs' has '{cidr}', which is not an IP network such as "
                              f"203.0.113.0/24.") from error
        if network.prefixlen == 0:
            raise ConfigError(f"'{PROJECT}:adminCidrs' has '{cidr}': SSH must not be open to the whole "
                              f"internet. Use your office or VPN range, e.g. 203.0.113.0/24.")
    keys = _list(config, "sshPublicKeys", "\"$(cat ~/.ssh/id_ed25519.pub)\"", required=True)
    for key in keys:
        if not _SSH_KEY.match(key):
            raise ConfigError(f"'{PROJECT}:sshPublicKeys' has an entry that is not an OpenSSH public key "
                              f"('{key[:30]}…'). Use the contents of a .pub file.")
    acme_email = _required(config, "acmeEmail", "ops@example.ac.uk")
    if not _EMAIL.match(acme_email):
        raise ConfigError(f"'{PROJECT}:acmeEmail' is not an e-mail address. "
                          f"Set it with: {_set_command('acmeEmail', 'ops@example.ac.uk')}")
    location, server_type = _server_type(config)
    production = stack == "prod"
    return StackConfig(
        stack=stack,
        domain=domain,
        exam_domain=exam_domain,
        exam_mathjax=exam_mathjax,
        dns_zone=dns_zone,
        location=location,
        server_type=server_type,
        image=config.get("image") or "debian-12",
        admin_cidrs=admin_cidrs,
        ssh_public_keys=keys,
        acme_email=acme_email,
        acme_staging=_bool(config, "acmeStaging", False),
        daphne_replicas=_int(config, "daphneReplicas", 4, 1, 32),
        huey_replicas=_int(config, "hueyReplicas", 1, 1, 8),
        data_volume_gb=_int(config, "dataVolumeGb", 20, 10, 10240),
        files_volume_gb=_int(config, "filesVolumeGb", 20, 10, 10240),
        instance_name=config.get("instanceName") or "Numbas LTI",
        from_email=config.get("fromEmail") or f"numbas-lti@{domain}",
        admin_emails=_list(config, "adminEmails", "ops@example.ac.uk", required=False),
        protect=_bool(config, "protect", production),
        backups=_bool(config, "backups", production),
        offsite=_offsite_backups(config, stack, production),
        email_url=config.get_secret("emailUrl"),
    )


def _offsite_backups(config: pulumi.Config, stack: str, production: bool) -> OffsiteBackups | None:
    """Backups of PostgreSQL (continuous, point in time) and of the files, to an S3 bucket, e.g.
    Hetzner Object Storage (create the bucket's credentials in the Hetzner console). Required for
    the prod stack unless turned off on purpose: the volumes are the only copy otherwise."""
    wanted = _bool(config, "offsiteBackups", production)
    if not wanted:
        return None
    bucket = (config.get("backupBucket") or "").strip()
    if not bucket:
        raise ConfigError(
            f"'{PROJECT}:backupBucket' is missing: the {stack} stack keeps backups of its database and files in an "
            f"S3 bucket (the Hetzner volumes have no snapshots). Create a bucket and S3 credentials (Hetzner console: "
            f"Object Storage), then: {_set_command('backupBucket', 'numbas-lti-backups')}; "
            f"{_set_command('backupEndpoint', 'fsn1.your-objectstorage.com')}; "
            f"{_set_command('backupAccessKey', '<access key>', secret=True)}; "
            f"{_set_command('backupSecretKey', '<secret key>', secret=True)}. "
            f"To run without backups (not for real data): {_set_command('offsiteBackups', 'false')}")
    endpoint = (config.get("backupEndpoint") or "").strip().lower()
    if not _HOSTNAME.match(endpoint):
        raise ConfigError(f"'{PROJECT}:backupEndpoint' must be the S3 endpoint's host name, e.g. "
                          f"fsn1.your-objectstorage.com. Set it with: "
                          f"{_set_command('backupEndpoint', 'fsn1.your-objectstorage.com')}")
    access_key, secret_key = config.get_secret("backupAccessKey"), config.get_secret("backupSecretKey")
    for key, value in (("backupAccessKey", access_key), ("backupSecretKey", secret_key)):
        if value is None:
            raise ConfigError(f"'{PROJECT}:{key}' is missing (the bucket's S3 credentials). "
                              f"Set it with: {_set_command(key, '<value>', secret=True)}")
    # Hetzner's endpoints are <location>.your-objectstorage.com: the region is the location.
    region = (config.get("backupRegion") or "").strip() or endpoint.split(".", 1)[0]
    try:
        settings = backup.BackupSettings(
            endpoint=endpoint, region=region, bucket=bucket,
            prefix=(config.get("backupPrefix") or "").strip() or f"{PROJECT}-{stack}",
            uri_style=(config.get("backupUriStyle") or "path").strip(),
            retention_full=_int(config, "backupRetentionFull", 4, 1, 52),
        )
    except ValueError as error:
        raise ConfigError(f"Backup settings: {error}") from error
    return OffsiteBackups(settings, access_key, secret_key)
