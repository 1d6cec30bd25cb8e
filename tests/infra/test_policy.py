"""The policy pack (infra/policy): each rule with a resource that passes and one that violates it.

The validators are plain functions; the resources are small stand-ins whose props go through the
SDK's own unknown-checking proxy, as the analyzer hands them over. A few tests go through the SDK's
analyzer servicer itself, to pin down how pulumi-policy 1.21 presents secrets and unknowns.
"""

from __future__ import annotations

import importlib.util
import runpy
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from google.protobuf import json_format, struct_pb2
from pulumi.runtime import proto
from pulumi_policy import (
    EnforcementLevel,
    PolicyCustomTimeouts,
    PolicyResourceOptions,
    ResourceValidationPolicy,
    Secret,
    StackValidationPolicy,
)
from pulumi_policy.deserialize import SPECIAL_SECRET_SIG, SPECIAL_SIG_KEY, deserialize_properties
from pulumi_policy.proxy import UNKNOWN_ARRAY_VALUE, UNKNOWN_STRING_VALUE, UnknownValueError, unknown_checking_proxy

from numbas_infra import spec

POLICY_DIR = Path(__file__).resolve().parents[2] / "infra" / "policy"


def _load_policies():
    module_spec = importlib.util.spec_from_file_location("numbas_policies", POLICY_DIR / "numbas_policies.py")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules["numbas_policies"] = module  # __main__.py imports it by this name
    module_spec.loader.exec_module(module)
    return module


P = _load_policies()


# --- stand-ins for what the analyzer passes ----------------------------------------------------


def options(additional_secret_outputs=()) -> PolicyResourceOptions:
    return PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), list(additional_secret_outputs))


@dataclass
class Resource:
    """ResourceValidationArgs / PolicyResource as far as the validators read them."""

    resource_type: str
    props: Any
    name: str
    opts: PolicyResourceOptions = field(default_factory=options)

    @property
    def urn(self) -> str:
        return f"urn:pulumi:test::numbas-lti::{self.resource_type}::{self.name}"


def resource(resource_type: str, resource_name: str, opts: PolicyResourceOptions | None = None, /, **props) -> Resource:
    """Props wrapped like the analyzer wraps them (Mapping/Sequence proxies that raise on unknowns)."""
    return Resource(resource_type, unknown_checking_proxy(props), resource_name, opts or options())


@dataclass
class Stack:
    resources: list


def run(validator, args) -> list[str]:
    messages: list[str] = []

    def report_violation(message: str, urn: str | None = None) -> None:
        messages.append(message)

    validator(args, report_violation)
    return messages


def firewall(*rules, name="numbas-lti") -> Resource:
    return resource(P.FIREWALL, name, name=name, rules=list(rules))


def rule(protocol, port=None, sources=("0.0.0.0/0", "::/0"), direction="in", description=None) -> dict:
    r = {"direction": direction, "protocol": protocol, "sourceIps": list(sources)}
    if port is not None:
        r["port"] = port
    if description:
        r["description"] = description
    return r


ADMINS = ("203.0.113.0/24", "2001:db8::/32")
GOOD_FIREWALL = firewall(rule("tcp", "80"), rule("tcp", "443"), rule("tcp", "22", ADMINS), rule("icmp"),
                         rule("tcp", "any", (), direction="out"))


# --- 1: no SSH from anywhere ------------------------------------------------------------------


def test_ssh_from_admin_networks_passes():
    assert run(P.no_world_ssh, GOOD_FIREWALL) == []


@pytest.mark.parametrize("sources", [("0.0.0.0/0",), ("::/0",), ("203.0.113.0/24", "0.0.0.0/0")])
def test_ssh_from_anywhere_is_reported(sources):
    [message] = run(P.no_world_ssh, firewall(rule("tcp", "22", sources, description="ssh")))
    assert "SSH (TCP 22)" in message and sources[-1] in message and "'ssh'" in message


@pytest.mark.parametrize("port", ["any", "20-25", None])
def test_port_ranges_that_include_ssh_count_as_ssh(port):
    assert run(P.no_world_ssh, firewall(rule("tcp", port)))


def test_outbound_and_udp_rules_are_not_ssh():
    assert run(P.no_world_ssh, firewall(rule("tcp", "22", direction="out"), rule("udp", "22"))) == []


# --- 2: only web, restricted SSH and ICMP inbound ----------------------------------------------


def test_web_restricted_ssh_and_icmp_pass():
    assert run(P.firewall_allows_only_web_ssh_icmp, GOOD_FIREWALL) == []


@pytest.mark.parametrize("bad_rule, problem", [
    (rule("tcp", "5432"), "TCP port 5432"),
    (rule("tcp", "80-443"), "TCP ports 80-443"),
    (rule("tcp", "any", ADMINS), "TCP all ports"),
    (rule("udp", "443"), "UDP port 443"),
    (rule("gre"), "GRE all ports"),
    (rule("tcp", "22"), "opens TCP 22 to 0.0.0.0/0, ::/0"),
])
def test_anything_else_inbound_is_reported(bad_rule, problem):
    [message] = run(P.firewall_allows_only_web_ssh_icmp, firewall(rule("tcp", "443"), bad_rule))
    assert problem in message and "inbound rule 1" in message


def test_rules_of_other_resources_are_ignored():
    assert run(P.firewall_allows_only_web_ssh_icmp, resource(P.SERVER, "web", rules=[rule("tcp", "5432")])) == []


# --- 3: only nginx publishes ports -----------------------------------------------------------


def container(resource_name: str, name: str, image: str = "nginx:1.27.4-bookworm", opts=None, **props) -> Resource:
    return resource(P.CONTAINER, resource_name, opts, name=name, image=image, **props)


def test_nginx_container_name_matches_the_spec():
    assert P.NGINX_CONTAINER == spec.container_name("nginx")


def test_nginx_may_publish_ports():
    ports = [{"internal": 80, "external": 80, "protocol": "tcp"}, {"internal": 443, "external": 443}]
    assert run(P.only_nginx_publishes_ports, container("web", P.NGINX_CONTAINER, ports=ports)) == []
    assert run(P.only_nginx_publishes_ports, container("nginx", "edge", ports=ports)) == []


def test_containers_without_ports_pass():
    assert run(P.only_nginx_publishes_ports, container("daphne-1", "numbas-lti-daphne-1", ports=[])) == []
    assert run(P.only_nginx_publishes_ports, container("redis", "numbas-lti-redis")) == []


def test_other_container_publishing_a_port_is_reported():
    [message] = run(P.only_nginx_publishes_ports,
                    container("postgres", "numbas-lti-postgres", ports=[{"internal": 5432.0, "external": 5432.0}]))
    assert "'numbas-lti-postgres' publishes ports 5432->5432/tcp" in message and "numbas-lti-nginx" in message


# --- 4: no plain-text secrets in container environments ----------------------------------------

SECRET_ENVS = ["DEBUG=0", "SECRET_KEY=s3cr3t-value", "DATABASE_URL=postgres://numbas_lti:pw@numbas-lti-postgres:5432/x"]


def test_environment_declared_secret_passes():
    app = container("daphne-1", "numbas-lti-daphne-1", opts=options(["envs"]), envs=SECRET_ENVS)
    assert run(P.no_plaintext_secret_env, app) == []


def test_secret_markers_and_values_not_known_yet_pass():
    # a pulumi_policy.Secret marker, and (first preview) a value computed from a RandomPassword
    envs = ["DEBUG=0", Secret("SECRET_KEY=s3cr3t-value"), UNKNOWN_STRING_VALUE]
    assert run(P.no_plaintext_secret_env, container("daphne-1", "numbas-lti-daphne-1", envs=envs)) == []
    assert run(P.no_plaintext_secret_env, container("daphne-1", "numbas-lti-daphne-1", envs=UNKNOWN_ARRAY_VALUE)) == []


def test_non_secret_environment_passes():
    env = spec.app_environment(spec.AppSettings(domain="numbas.example.ac.uk", exam_domain="exams.numbas.example.ac.uk", admin_emails=("ops@example.ac.uk",)))
    envs = [f"{k}={v}" for k, v in env.items()] + ["POSTGRES_PASSWORD_FILE=/run/secrets/pg", "API_TOKEN="]
    assert run(P.no_plaintext_secret_env, container("daphne-1", "numbas-lti-daphne-1", envs=envs)) == []


def test_plain_text_secrets_are_reported_by_name_without_their_values():
    envs = SECRET_ENVS + ["REDIS_URL=redis://:hunter2@numbas-lti-redis:6379/0", UNKNOWN_STRING_VALUE]
    messages = run(P.no_plaintext_secret_env, container("daphne-1", "numbas-lti-daphne-1", envs=envs))
    assert len(messages) == 3
    assert "SECRET_KEY holds a secret in plain text" in messages[0]
    assert "DATABASE_URL holds a secret" in messages[1]
    assert "REDIS_URL holds a URL with a password" in messages[2]
    assert all("additional_secret_outputs=['envs']" in m for m in messages)
    assert not any(word in m for m in messages for word in ("s3cr3t", "pw@", "hunter2"))


# --- 5: production protection ---------------------------------------------------------------


def server(**flags) -> Resource:
    return resource(P.SERVER, "server", name="numbas-lti", serverType="cx33", **flags)


PROTECTED = {"deleteProtection": True, "rebuildProtection": True, "backups": True}


@pytest.fixture
def stack(monkeypatch):
    def use(name: str) -> None:
        monkeypatch.setenv(P.STACK_ENV, name)
    return use


def test_production_is_decided_by_the_stack_name(stack, monkeypatch):
    stack("prod")
    assert P.is_production_stack() and P.is_production_stack("acme/numbas-lti/prod")
    stack("staging")
    assert not P.is_production_stack()
    monkeypatch.delenv(P.STACK_ENV)
    monkeypatch.setattr("pulumi.get_stack", lambda: "prod")  # the stack being deployed
    assert P.current_stack() == "prod" and P.is_production_stack()

    def no_stack():
        raise RuntimeError("not in a deployment")
    monkeypatch.setattr("pulumi.get_stack", no_stack)
    assert P.current_stack() is None and not P.is_production_stack()


def test_protected_production_resources_pass(stack):
    stack("prod")
    assert run(P.production_protection, server(**PROTECTED)) == []
    assert run(P.production_protection, resource(P.VOLUME, "data", size=40, deleteProtection=True)) == []


def test_unprotected_production_resources_are_reported(stack):
    stack("prod")
    [message] = run(P.production_protection, server(deleteProtection=True))
    assert "Server 'numbas-lti' in production stack 'prod' needs rebuildProtection, backups set to true" in message
    [message] = run(P.production_protection, resource(P.VOLUME, "files", name="numbas-lti-files", size=40))
    assert "Volume 'numbas-lti-files'" in message and "deleteProtection" in message


def test_unprotected_resources_are_fine_outside_production(stack):
    stack("staging")
    assert run(P.production_protection, server()) == []
    assert run(P.production_protection, resource(P.VOLUME, "data", size=10, deleteProtection=False)) == []


# --- 6: pinned images ---------------------------------------------------------------------

DIGEST = "sha256:" + "a" * 64


@pytest.mark.parametrize("reference", [
    spec.NGINX_IMAGE, spec.POSTGRES_IMAGE, spec.CERTBOT_IMAGE, f"nginx@{DIGEST}", f"nginx:1.27@{DIGEST}", DIGEST,
    "registry.example.ac.uk:5000/numbas-lti-app:3f2c1a9",
])
def test_pinned_images_pass(reference):
    assert run(P.pinned_images, resource(P.REMOTE_IMAGE, "nginx", name=reference)) == []
    assert run(P.pinned_images, container("web", P.NGINX_CONTAINER, image=reference)) == []


@pytest.mark.parametrize("reference, problem", [
    ("nginx:latest", "uses the tag latest"),
    ("nginx", "has no tag (which means latest)"),
    ("registry.example.ac.uk:5000/nginx", "has no tag"),
    ("nginx:", "has an empty tag"),
    ("nginx@sha256:abc", "has a malformed digest"),
])
def test_latest_or_untagged_images_are_reported(reference, problem):
    [message] = run(P.pinned_images, resource(P.REMOTE_IMAGE, "nginx", name=reference))
    assert f"RemoteImage 'nginx' image '{reference}' {problem}" in message
    [message] = run(P.pinned_images, container("web", P.NGINX_CONTAINER, image=reference))
    assert f"Container 'web' image '{reference}'" in message


def test_built_app_image_needs_a_tag():
    build = {"context": "app"}
    assert run(P.pinned_images, resource(P.IMAGE, "app", imageName=f"{spec.APP_IMAGE}:3f2c1a9", build=build)) == []
    [message] = run(P.pinned_images, resource(P.IMAGE, "app", imageName=spec.APP_IMAGE, build=build))
    assert "Image 'app' image 'numbas-lti-app' has no tag" in message


def test_image_not_known_during_preview_defers_to_the_sdk():
    """The SDK turns UnknownValueError into an advisory "can't run during preview"; `up` checks again."""
    with pytest.raises(UnknownValueError):
        run(P.pinned_images, container("web", P.NGINX_CONTAINER, image=UNKNOWN_STRING_VALUE))


# --- stack: servers behind a firewall -------------------------------------------------------


def test_servers_with_a_firewall_pass():
    assert run(P.servers_behind_firewall, Stack([server(firewallIds=[1234.0]), GOOD_FIREWALL])) == []
    assert run(P.servers_behind_firewall, Stack([server(firewallIds=UNKNOWN_ARRAY_VALUE)])) == []
    attachment = resource(P.FIREWALL_ATTACHMENT, "attach", firewallId=UNKNOWN_STRING_VALUE, serverIds=[UNKNOWN_STRING_VALUE])
    assert run(P.servers_behind_firewall, Stack([server(), GOOD_FIREWALL, attachment])) == []
    applied = resource(P.FIREWALL, "fw", name="fw", rules=[], applyTos=[{"server": 1.0}])
    assert run(P.servers_behind_firewall, Stack([server(), applied])) == []


def test_server_without_a_firewall_is_reported():
    [message] = run(P.servers_behind_firewall, Stack([server(), GOOD_FIREWALL]))
    assert "Server 'server' has no Hetzner firewall" in message


# --- through the SDK's analyzer: how secrets and unknowns arrive ---------------------------------


def test_secret_values_reach_policies_in_plain_text():
    """The engine sends secrets marked; pulumi-policy's Analyze unwraps them before validators run."""
    wire = {"envs": ["DEBUG=0", {SPECIAL_SIG_KEY: SPECIAL_SECRET_SIG, "value": "SECRET_KEY=s3cr3t-value"}]}
    props = unknown_checking_proxy(deserialize_properties(wire))  # as _PolicyAnalyzerServicer.Analyze does
    assert props["envs"][1] == "SECRET_KEY=s3cr3t-value"


def _analyze(resource_type: str, props: dict, additional_secret_outputs=()) -> list:
    from pulumi_policy.policy import _PolicyAnalyzerServicer

    servicer = _PolicyAnalyzerServicer(P.PACK_NAME, "0.0.1", P.build_policies(), EnforcementLevel.MANDATORY)
    struct = struct_pb2.Struct()
    json_format.ParseDict(props, struct)
    request = proto.AnalyzeRequest(
        type=resource_type, name="daphne-1", urn=f"urn:pulumi:prod::numbas-lti::{resource_type}::daphne-1",
        properties=struct, options=proto.AnalyzerResourceOptions(additionalSecretOutputs=list(additional_secret_outputs)))
    return list(servicer.Analyze(request, None).diagnostics)


def test_analyzer_reports_a_secret_env_unless_the_container_declares_it_secret():
    secret_env = {SPECIAL_SIG_KEY: SPECIAL_SECRET_SIG, "value": "SECRET_KEY=s3cr3t-value"}
    props = {"name": "numbas-lti-daphne-1", "image": f"{spec.APP_IMAGE}:3f2c1a9", "envs": ["DEBUG=0", secret_env]}
    [diagnostic] = _analyze(P.CONTAINER, props)
    assert diagnostic.policyName == "no-plaintext-secret-env"
    assert diagnostic.enforcementLevel == proto.MANDATORY
    assert "SECRET_KEY holds a secret" in diagnostic.message and "s3cr3t" not in diagnostic.message
    assert _analyze(P.CONTAINER, props, ["envs"]) == []


def test_analyzer_turns_an_unknown_image_into_an_advisory_note():
    props = {"name": "numbas-lti-daphne-1", "image": UNKNOWN_STRING_VALUE, "envs": ["DEBUG=0", UNKNOWN_STRING_VALUE]}
    [diagnostic] = _analyze(P.CONTAINER, props)
    assert diagnostic.policyName == "pinned-images" and diagnostic.enforcementLevel == proto.ADVISORY
    assert "can't run policy" in diagnostic.message


# --- the pack ------------------------------------------------------------------------------


def test_policies_have_unique_names_and_every_validator():
    policies = P.build_policies()
    names = [p.name for p in policies]
    assert len(names) == len(set(names)) == len(P.RESOURCE_VALIDATORS) + len(P.STACK_VALIDATORS)
    assert {p.name for p in policies if isinstance(p, ResourceValidationPolicy)} == set(P.RESOURCE_VALIDATORS)
    assert {p.name for p in policies if isinstance(p, StackValidationPolicy)} == set(P.STACK_VALIDATORS)


def test_main_builds_a_mandatory_pack(monkeypatch):
    built = {}

    class FakePolicyPack:  # the real one starts a gRPC server and blocks
        def __init__(self, **kwargs):
            built.update(kwargs)

    monkeypatch.setattr("pulumi_policy.PolicyPack", FakePolicyPack)
    runpy.run_path(str(POLICY_DIR), run_name="__main__")
    assert built["name"] == "numbas-lti-policies"
    assert built["enforcement_level"] == EnforcementLevel.MANDATORY
    assert [p.name for p in built["policies"]] == [p.name for p in P.POLICIES]


def test_policy_project_file_names_the_python_runtime():
    project = yaml.safe_load((POLICY_DIR / "PulumiPolicy.yaml").read_text())
    assert project["runtime"]["name"] == "python"
    assert project["description"] and project["version"]
    # the repository's .venv, as Pulumi.yaml's
    assert (POLICY_DIR / project["runtime"]["options"]["virtualenv"]).resolve() == POLICY_DIR.parents[1] / ".venv"


@pytest.mark.slow
def test_pack_runs_under_pulumis_policy_runner():
    """`python -m pulumi.policy ADDRESS infra/policy` is how the CLI starts a Python pack: it serves
    the analyzer on the port it prints, and learns the stack from PULUMI_STACK."""
    import subprocess

    import grpc
    from google.protobuf import empty_pb2
    from pulumi.runtime.proto import analyzer_pb2_grpc

    env = {"PATH": "/usr/bin:/bin", "PULUMI_STACK": "prod", "PULUMI_PROJECT": "numbas-lti", "PULUMI_DRY_RUN": "true"}
    pack = subprocess.Popen([sys.executable, "-u", "-m", "pulumi.policy", "127.0.0.1:1", str(POLICY_DIR)],
                            stdout=subprocess.PIPE, env=env)
    try:
        port = int(pack.stdout.readline())
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            analyzer = analyzer_pb2_grpc.AnalyzerStub(channel)
            info = analyzer.GetAnalyzerInfo(empty_pb2.Empty(), timeout=10)
            assert info.name == "numbas-lti-policies"
            assert {p.name: p.enforcementLevel for p in info.policies} == {
                p.name: proto.MANDATORY for p in P.POLICIES}
            struct = struct_pb2.Struct()
            json_format.ParseDict({"serverType": "cx33", "deleteProtection": True, "rebuildProtection": True}, struct)
            response = analyzer.Analyze(proto.AnalyzeRequest(
                type=P.SERVER, name="server", urn="urn:pulumi:prod::numbas-lti::hcloud:index/server:Server::server",
                properties=struct), timeout=10)
        [diagnostic] = response.diagnostics
        assert diagnostic.policyName == "production-protection" and "needs backups" in diagnostic.message
    finally:
        pack.terminate()
        pack.wait(timeout=10)


# --- the program itself passes the pack -------------------------------------------------------


def _unwrap(value):
    from tests.infra.program import plain

    value = plain(value)
    if isinstance(value, dict):
        return {k: _unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unwrap(v) for v in value]
    return value


def _declared(stack_name):
    from tests.infra.program import run_program, was_secret

    result = run_program(stack_name)
    return [
        Resource(r.type, unknown_checking_proxy(_unwrap(r.inputs)), r.name,
                 # The engine keeps a secret-wrapped environment secret (additional_secret_outputs).
                 options(["envs"] if was_secret(r.inputs.get("envs")) else ()))
        for r in result.mocks.resources
    ]


@pytest.mark.parametrize("stack_name", ["prod", "staging"])
def test_the_program_passes_every_policy(stack_name, monkeypatch):
    monkeypatch.setenv(P.STACK_ENV, stack_name)
    resources = _declared(stack_name)
    violations = [(r.name, m) for r in resources for _, (_, validate) in P.RESOURCE_VALIDATORS.items()
                  for m in run(validate, r)]
    violations += [("stack", m) for _, (_, validate) in P.STACK_VALIDATORS.items()
                   for m in run(validate, Stack(resources))]
    assert violations == []


def test_an_unprotected_stack_called_prod_is_refused(monkeypatch):
    monkeypatch.setenv(P.STACK_ENV, "prod")
    resources = _declared("staging")  # protect and backups off
    messages = [m for r in resources for m in run(P.production_protection, r)]
    assert messages and any("backups" in m.lower() for m in messages)
