"""The Numbas LTI policy pack's rules, as plain functions.

Each validator takes ``(args, report_violation)`` exactly as pulumi_policy calls it, so the tests call
it directly with small stand-in objects; ``__main__.py`` only wraps ``POLICIES`` in a ``PolicyPack``
(constructing one starts the analyzer's gRPC server and never returns).

What the validators see (pulumi-policy 1.21, read from its source):

* ``args.props`` are the resource's inputs after the provider's Check, keyed in camelCase
  (``sourceIps``, ``deleteProtection``, ``imageName``), wrapped in read-only Mapping/Sequence
  proxies - not dicts and lists - and with numbers as floats (they travel as a protobuf Struct).
* A value not known yet during a preview (an output of a resource still to be created) is a sentinel
  string; reading it through the proxy raises ``UnknownValueError``, and the SDK turns that into an
  advisory "can't run policy during preview" note. ``pulumi up`` checks again with known values.
* Secrets are unwrapped: the engine sends them marked, but ``Analyze``/``AnalyzeStack`` deserialise
  without ``proxy_secrets``, so a ``pulumi.Output.secret`` value reaches the validator as its plain
  text, indistinguishable from a literal. A policy can therefore not tell a secret from a literal by
  its value. What it can see is the resource option ``additional_secret_outputs``, so the secret-env
  rule asks for that (see ``no_plaintext_secret_env``).
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Callable

from pulumi_policy import ReportViolation, ResourceValidationPolicy, Secret, StackValidationPolicy
from pulumi_policy.proxy import (
    UNKNOWN_ARCHIVE_VALUE,
    UNKNOWN_ARRAY_VALUE,
    UNKNOWN_ASSET_VALUE,
    UNKNOWN_BOOLEAN_VALUE,
    UNKNOWN_NUMBER_VALUE,
    UNKNOWN_OBJECT_VALUE,
    UNKNOWN_STRING_VALUE,
    UnknownValueError,
)

PACK_NAME = "numbas-lti-policies"

# Resource type tokens (from the pulumi_hcloud 1.43.3 / pulumi_docker 5.2.0 SDKs).
FIREWALL = "hcloud:index/firewall:Firewall"
FIREWALL_ATTACHMENT = "hcloud:index/firewallAttachment:FirewallAttachment"
SERVER = "hcloud:index/server:Server"
VOLUME = "hcloud:index/volume:Volume"
CONTAINER = "docker:index/container:Container"
REMOTE_IMAGE = "docker:index/remoteImage:RemoteImage"
IMAGE = "docker:index/image:Image"

# The one container that may publish ports (numbas_infra.spec.container_name("nginx"); the pack runs
# in its own process with only this directory on sys.path, so the tests check the two agree).
NGINX_CONTAINER = "numbas-lti-nginx"

# Which stacks are production: NUMBAS_LTI_STACK if set (tests, CI), else the stack being deployed.
STACK_ENV = "NUMBAS_LTI_STACK"
PRODUCTION_STACKS = frozenset({"prod"})

WEB_PORTS = frozenset({80, 443})
SSH_PORT = 22
ALL_PORTS = (1, 65535)

# An environment variable whose name says it holds a secret (…_FILE names a file holding one).
SECRET_ENV_NAME = re.compile(r"SECRET|PASSWORD|TOKEN|KEY|DATABASE_URL|EMAIL_URL", re.IGNORECASE)
# A URL with a password in it (scheme://user:password@host), whatever the variable is called.
URL_WITH_PASSWORD = re.compile(r"://[^/@\s:]*:[^/@\s]+@")
SECRET_ENV_OUTPUT = "envs"

_UNKNOWNS = frozenset({UNKNOWN_BOOLEAN_VALUE, UNKNOWN_NUMBER_VALUE, UNKNOWN_STRING_VALUE, UNKNOWN_ARRAY_VALUE,
                       UNKNOWN_ASSET_VALUE, UNKNOWN_ARCHIVE_VALUE, UNKNOWN_OBJECT_VALUE})

Validator = Callable[[Any, ReportViolation], None]


# --- reading props the way the engine delivers them ---------------------------------------------


def is_unknown(value: Any) -> bool:
    """True for the engine's "not known during preview" sentinels."""
    return isinstance(value, str) and value in _UNKNOWNS


def _get(props: Any, key: str, default: Any = None) -> Any:
    """props[key] or default; raises UnknownValueError for an unknown value, as the SDK's proxy
    does, also when the validators are handed a plain dict."""
    if not isinstance(props, Mapping):
        return default
    try:
        value = props[key]
    except KeyError:
        return default
    if is_unknown(value):
        raise UnknownValueError(value, [key])
    return value.value if isinstance(value, Secret) else value


def _list(props: Any, key: str) -> list[Any]:
    value = _get(props, key)
    if value is None or isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        return []
    return [_element(value, i) for i in range(len(value))]


def _element(seq: Sequence, index: int) -> Any:
    value = seq[index]
    if is_unknown(value):
        raise UnknownValueError(value, [str(index)])
    return value.value if isinstance(value, Secret) else value


def _number(value: Any) -> Any:
    """Struct numbers arrive as floats: show 443.0 as 443."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _label(args: Any, name_key: str = "name") -> str:
    name = _get(args.props, name_key)
    return f"'{name}'" if isinstance(name, str) and name else f"'{args.name}'"


# --- 1 and 2: the Hetzner firewall ------------------------------------------------------------


def _inbound_rules(props: Any) -> Iterator[tuple[int, Any]]:
    for index, rule in enumerate(_list(props, "rules")):
        if str(_get(rule, "direction", "in")).lower() == "in":
            yield index, rule


def port_range(port: Any) -> tuple[int, int]:
    """A firewall rule's `port` as (first, last): "22", "80-85", "any"; missing means all ports."""
    text = str(_number(port)).strip().lower() if port is not None else "any"
    match = re.fullmatch(r"(\d+)(?:\s*-\s*(\d+))?", text)
    if not match:
        return ALL_PORTS
    first = int(match.group(1))
    return first, int(match.group(2) or first)


def world_sources(sources: list[Any]) -> list[str]:
    """The sources that mean "anyone" (a /0 network, IPv4 or IPv6)."""
    world = []
    for source in sources:
        try:
            if ipaddress.ip_network(str(source).strip(), strict=False).prefixlen == 0:
                world.append(str(source))
        except ValueError:
            continue
    return world


def _describe(index: int, rule: Any) -> str:
    description = _get(rule, "description")
    return f"inbound rule {index}" + (f" ({description!r})" if description else "")


def no_world_ssh(args: Any, report_violation: ReportViolation) -> None:
    """No inbound rule lets SSH (TCP 22) in from 0.0.0.0/0 or ::/0."""
    if args.resource_type != FIREWALL:
        return
    for index, rule in _inbound_rules(args.props):
        if str(_get(rule, "protocol", "")).lower() != "tcp":
            continue
        first, last = port_range(_get(rule, "port"))
        world = world_sources(_list(rule, "sourceIps"))
        if first <= SSH_PORT <= last and world:
            report_violation(
                f"Firewall {_label(args)} {_describe(index, rule)} opens SSH (TCP 22) to {', '.join(world)}: "
                "limit sourceIps to the admins' networks (numbas-lti:adminCidrs).")


def firewall_allows_only_web_ssh_icmp(args: Any, report_violation: ReportViolation) -> None:
    """Inbound, only TCP 80 and 443 (from anywhere), TCP 22 (from restricted sources) and ICMP."""
    if args.resource_type != FIREWALL:
        return
    for index, rule in _inbound_rules(args.props):
        protocol = str(_get(rule, "protocol", "")).lower()
        if protocol == "icmp":
            continue
        port = _get(rule, "port")
        first, last = port_range(port)
        if protocol == "tcp" and first == last and first in WEB_PORTS:
            continue
        if protocol == "tcp" and (first, last) == (SSH_PORT, SSH_PORT):
            world = world_sources(_list(rule, "sourceIps"))
            if not world:
                continue
            report_violation(
                f"Firewall {_label(args)} {_describe(index, rule)} opens TCP 22 to {', '.join(world)}: "
                "SSH must come only from restricted sources.")
            continue
        opened = "all ports" if (first, last) == ALL_PORTS else (
            f"port {first}" if first == last else f"ports {first}-{last}")
        report_violation(
            f"Firewall {_label(args)} {_describe(index, rule)} opens {protocol.upper() or 'an unnamed protocol'} "
            f"{opened}: only TCP 80 and 443, TCP 22 from restricted sources, and ICMP may be open inbound.")


# --- 3: published ports ------------------------------------------------------------------------


def only_nginx_publishes_ports(args: Any, report_violation: ReportViolation) -> None:
    """Only the nginx container publishes ports; everything else is reached over the Docker network."""
    if args.resource_type != CONTAINER:
        return
    ports = _list(args.props, "ports")
    if not ports:
        return
    container = _get(args.props, "name")
    if container == NGINX_CONTAINER or "nginx" in str(args.name):
        return
    published = []
    for port in ports:
        external = _get(port, "external")
        internal = _get(port, "internal")
        protocol = _get(port, "protocol") or "tcp"
        published.append(f"{_number(external) if external is not None else 'random'}->{_number(internal)}/{protocol}")
    report_violation(
        f"Container {_label(args)} publishes ports {', '.join(published)}: only {NGINX_CONTAINER} may publish "
        "ports; other containers are reached over the Docker network.")


# --- 4: secrets in container environments -----------------------------------------------------


def secret_env_problem(entry: str) -> str | None:
    """Why a "KEY=value" entry looks like a secret (None if it does not). Never returns the value."""
    key, _, value = entry.partition("=")
    if not value or key.upper().endswith("_FILE"):
        return None
    if SECRET_ENV_NAME.search(key):
        return f"{key} holds a secret"
    if URL_WITH_PASSWORD.search(value):
        return f"{key} holds a URL with a password"
    return None


def no_plaintext_secret_env(args: Any, report_violation: ReportViolation) -> None:
    """A container whose environment carries secrets must mark it secret.

    Entries count as secret-looking when the name matches SECRET|PASSWORD|TOKEN|KEY|DATABASE_URL|
    EMAIL_URL (except *_FILE) or the value is a URL with a password. Since pulumi-policy hands
    validators secret values in plain text (see the module docstring), the check accepts, per
    container, ``additional_secret_outputs`` naming ``envs`` (the engine then keeps that output
    secret too, and the policy can see the declaration), and, per entry, a value not known yet (computed from a resource still
    to be created, e.g. a RandomPassword during the first preview) or a ``pulumi_policy.Secret``
    marker. Anything else is reported by variable name; the value never goes into the message.
    """
    if args.resource_type != CONTAINER:
        return
    opts = getattr(args, "opts", None)
    if SECRET_ENV_OUTPUT in list(getattr(opts, "additional_secret_outputs", None) or []):
        return
    try:
        envs = args.props["envs"] if isinstance(args.props, Mapping) and "envs" in args.props else None
    except UnknownValueError:
        return  # the whole list is computed: nothing in it is a literal
    if is_unknown(envs) or isinstance(envs, (str, bytes)) or not isinstance(envs, Sequence):
        return  # absent, computed, or a Secret marker around the whole list
    for index in range(len(envs)):
        try:
            entry = envs[index]
        except UnknownValueError:
            continue
        if is_unknown(entry) or isinstance(entry, Secret) or not isinstance(entry, str):
            continue
        problem = secret_env_problem(entry)
        if problem:
            report_violation(
                f"Container {_label(args)}: {problem} in plain text. Pass it as a Pulumi secret and "
                f"mark the environment secret with ResourceOptions(additional_secret_outputs=['{SECRET_ENV_OUTPUT}']).")


# --- 5: production protection ------------------------------------------------------------------


def current_stack() -> str | None:
    """NUMBAS_LTI_STACK, else the stack Pulumi is deploying (None if that cannot be told)."""
    stack = os.environ.get(STACK_ENV, "").strip()
    if stack:
        return stack
    try:
        import pulumi

        return pulumi.get_stack()
    except Exception:  # noqa: BLE001 - outside a deployment there is no stack
        return None


def is_production_stack(stack: str | None = None) -> bool:
    """Whether `stack` (default: current_stack()) is production; "org/project/prod" counts too."""
    stack = current_stack() if stack is None else stack
    return bool(stack) and stack.rsplit("/", 1)[-1].lower() in PRODUCTION_STACKS


def production_protection(args: Any, report_violation: ReportViolation) -> None:
    """In production, servers have delete and rebuild protection and backups; volumes delete protection."""
    required = {SERVER: ("deleteProtection", "rebuildProtection", "backups"), VOLUME: ("deleteProtection",)}
    flags = required.get(args.resource_type)
    if not flags or not is_production_stack():
        return
    missing = [flag for flag in flags if _get(args.props, flag) is not True]
    if missing:
        kind = "Server" if args.resource_type == SERVER else "Volume"
        report_violation(
            f"{kind} {_label(args)} in production stack '{current_stack()}' needs {', '.join(missing)} set to "
            "true (numbas-lti:protect / numbas-lti:backups).")


# --- 6: pinned images --------------------------------------------------------------------------

_IMAGE_ID = re.compile(r"sha256:[0-9a-f]{12,64}")


def image_reference_problem(reference: str) -> str | None:
    """Why an image reference is not pinned (None if it is): it must carry a tag other than
    "latest", a digest (…@sha256:…), or be a local image ID (sha256:…)."""
    reference = reference.strip()
    if not reference:
        return "is empty"
    if _IMAGE_ID.fullmatch(reference):
        return None
    if "@" in reference:
        digest = reference.split("@", 1)[1]
        return None if re.fullmatch(r"sha256:[0-9a-f]{64}", digest) else f"has a malformed digest '{digest}'"
    last = reference.rsplit("/", 1)[-1]  # "registry:5000/app" has no tag: its ":" is the registry's
    if ":" not in last:
        return "has no tag (which means latest)"
    tag = last.split(":", 1)[1]
    if not tag:
        return "has an empty tag"
    if tag.lower() == "latest":
        return "uses the tag latest"
    return None


def pinned_images(args: Any, report_violation: ReportViolation) -> None:
    """Images are pinned: RemoteImage `name`, Container `image`, Image `imageName`."""
    prop = {REMOTE_IMAGE: "name", CONTAINER: "image", IMAGE: "imageName"}.get(args.resource_type)
    if prop is None:
        return
    reference = _get(args.props, prop)
    if not isinstance(reference, str):
        return
    problem = image_reference_problem(reference)
    if problem:
        kind = args.resource_type.rsplit(":", 1)[-1]
        report_violation(
            f"{kind} '{args.name}' image '{reference}' {problem}: pin a version tag "
            "(e.g. nginx:1.27.4-bookworm) or a digest (@sha256:...).")


# --- stack: servers sit behind a firewall -------------------------------------------------------


def _non_empty_or_unknown(props: Any, key: str) -> bool:
    try:
        return bool(_list(props, key))
    except UnknownValueError:
        return True  # computed, e.g. firewallIds from a firewall still to be created


def servers_behind_firewall(args: Any, report_violation: ReportViolation) -> None:
    """Every hcloud Server has a Hetzner firewall (its firewallIds, or a FirewallAttachment or a
    Firewall applyTo in the stack). Rules 1 and 2 mean nothing for a server no firewall covers.
    Resource ids are not known during a first preview, so an attachment anywhere in the stack counts."""
    resources = list(args.resources)
    attached = any(
        (r.resource_type == FIREWALL_ATTACHMENT and (_non_empty_or_unknown(r.props, "serverIds")
                                                     or _non_empty_or_unknown(r.props, "labelSelectors")))
        or (r.resource_type == FIREWALL and _non_empty_or_unknown(r.props, "applyTos"))
        for r in resources)
    for server in resources:
        if server.resource_type == SERVER and not attached and not _non_empty_or_unknown(server.props, "firewallIds"):
            report_violation(
                f"Server '{server.name}' has no Hetzner firewall: set firewall_ids or attach one "
                "(FirewallAttachment or Firewall apply_tos).", server.urn)


# --- the pack's policies -----------------------------------------------------------------------

RESOURCE_VALIDATORS: dict[str, tuple[str, Validator]] = {
    "no-ssh-from-anywhere": ("SSH (TCP 22) is never open to 0.0.0.0/0 or ::/0.", no_world_ssh),
    "firewall-web-ssh-icmp-only": (
        "The firewall opens only TCP 80/443, TCP 22 from restricted sources, and ICMP.",
        firewall_allows_only_web_ssh_icmp),
    "only-nginx-publishes-ports": (f"Only the {NGINX_CONTAINER} container publishes ports.", only_nginx_publishes_ports),
    "no-plaintext-secret-env": (
        "Container environment secrets are Pulumi secrets, not plain text.", no_plaintext_secret_env),
    "production-protection": (
        "Production servers have delete/rebuild protection and backups; volumes delete protection.",
        production_protection),
    "pinned-images": ("Images carry an explicit tag other than latest, or a digest.", pinned_images),
}

STACK_VALIDATORS: dict[str, tuple[str, Validator]] = {
    "servers-behind-firewall": ("Every server is covered by a Hetzner firewall.", servers_behind_firewall),
}


def build_policies() -> list:
    """The policies, without a pack (no engine needed); the pack sets their enforcement level."""
    return ([ResourceValidationPolicy(name=name, description=description, validate=validate)
             for name, (description, validate) in RESOURCE_VALIDATORS.items()]
            + [StackValidationPolicy(name=name, description=description, validate=validate)
               for name, (description, validate) in STACK_VALIDATORS.items()])


POLICIES = build_policies()
