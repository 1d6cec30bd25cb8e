"""The Pulumi program under mocks, for the example prod and staging stacks: every resource
with the right properties, exact firewall rules, the Docker provider waiting for cloud-init,
replicas, secrets kept secret, only nginx publishing ports, and config errors that say what
to set."""

import pytest

import json
import re

from tests.infra.program import is_secret, plain, resolve, run_program, was_secret

HETZNER = "hcloud:index/"
CONTAINER = "docker:index/container:Container"


@pytest.fixture(scope="module", params=["prod", "staging"])
def run(request):
    return run_program(request.param)


def containers(run):
    return {r.inputs["name"]: r for r in run.mocks.of_type(CONTAINER)}


def by_role(run, role):
    """Names of the daphne or huey containers (numbas-lti-daphne-<generation>-<n>)."""
    return sorted(n for n in containers(run) if n.startswith(f"numbas-lti-{role}-"))


def test_hetzner_resources_exist_with_their_properties(run):
    m = run.mocks
    prod = run.namespace["cfg"].stack == "prod"
    server = m.of_type(HETZNER + "server:Server")
    assert len(server) == 1
    s = server[0].inputs
    assert s["image"] == "debian-12" and s["location"] == "nbg1" and s["labels"]["app"] == "numbas-lti"
    assert s["deleteProtection"] is prod and s["rebuildProtection"] is prod and s["backups"] is prod
    assert len(s["sshKeys"]) == 2  # the admin's and the deploy key
    assert s["publicNets"][0]["ipv4Enabled"] and s["publicNets"][0]["ipv6Enabled"]
    ips = m.of_type(HETZNER + "primaryIp:PrimaryIp")
    assert sorted(i.inputs["type"] for i in ips) == ["ipv4", "ipv6"]
    assert all(i.inputs["autoDelete"] is False and i.inputs["assigneeType"] == "server" for i in ips)
    volumes = m.of_type(HETZNER + "volume:Volume")
    assert len(volumes) == 2 and all(v.inputs["format"] == "ext4" and v.inputs["automount"] is False for v in volumes)
    assert all(v.inputs["deleteProtection"] is prod for v in volumes)
    assert len(m.of_type(HETZNER + "volumeAttachment:VolumeAttachment")) == 2
    rdns = m.of_type(HETZNER + "rdns:Rdns")
    assert {r.inputs["dnsPtr"] for r in rdns} == {run.namespace["cfg"].domain} and len(rdns) == 2
    records = m.of_type(HETZNER + "zoneRrset:ZoneRrset")
    cfg = run.namespace["cfg"]
    site, exams = cfg.domain.removesuffix(".example.ac.uk"), cfg.exam_domain.removesuffix(".example.ac.uk")
    assert sorted((r.inputs["name"], r.inputs["type"]) for r in records) == [
        (exams, "A"), (exams, "AAAA"), (site, "A"), (site, "AAAA")]  # the site and its exam-content host
    assert all(r.inputs["zone"] == "example.ac.uk" for r in records)
    assert [r.inputs["records"][0]["value"] for r in records if r.inputs["type"] == "A"] == ["203.0.113.10"] * 2


def test_the_firewall_opens_80_443_everywhere_22_to_admins_and_icmp_only(run):
    (firewall,) = run.mocks.of_type(HETZNER + "firewall:Firewall")
    rules = {(r["protocol"], r.get("port"), tuple(r["sourceIps"])) for r in firewall.inputs["rules"]}
    everywhere = ("0.0.0.0/0", "::/0")
    assert rules == {("tcp", "80", everywhere), ("tcp", "443", everywhere), ("tcp", "22", ("203.0.113.0/24",)),
                     ("icmp", None, everywhere)}
    assert all(r["direction"] == "in" for r in firewall.inputs["rules"])


def test_the_docker_provider_waits_for_cloud_init_over_a_pinned_host_key(run):
    m = run.mocks
    prepare = m.named("app-prepare")
    assert "cloud-init status --wait" in prepare.inputs["create"]
    assert was_secret(prepare.inputs["connection"])  # it carries the deploy key
    assert plain(prepare.inputs["connection"])["hostKey"].startswith("ssh-ed25519 ")
    app = run.namespace["app"]
    # The provider's host is computed from the prepare step's output: it cannot exist before.
    assert app.provider._name == "app-docker"
    provider = m.named("app-docker")
    assert provider.inputs["host"] == "ssh://root@numbas-lti-" + run.namespace["cfg"].stack + "-server-4242"
    ssh_opts = json.loads(provider.inputs["sshOpts"])
    assert "StrictHostKeyChecking=yes" in ssh_opts and any(o.startswith("UserKnownHostsFile=") for o in ssh_opts)
    assert "HostName=203.0.113.10" in ssh_opts
    assert f"HostKeyAlias=numbas-lti-{run.namespace['cfg'].stack}-server-4242" in ssh_opts  # matches known_hosts
    assert not any("StrictHostKeyChecking=no" in o for o in ssh_opts)
    assert prepare.name in {r._name for r in resolve(app.docker_host.resources)}
    assert all(c.provider.startswith("urn:") and "app-docker" in c.provider for c in m.of_type(CONTAINER))


def test_replicas_give_containers_and_an_upstream_of_that_size():
    run = run_program("prod", {"daphneReplicas": 8, "hueyReplicas": 2})
    names = containers(run)
    daphnes = [n for n in names if n.startswith("numbas-lti-daphne-")]
    assert len(daphnes) == 8 and len([n for n in names if n.startswith("numbas-lti-huey-")]) == 2
    upstreams = resolve(lambda: run.namespace["app"].upstreams_conf.future())
    assert all(f"server {n}:8700 " in upstreams for n in daphnes)
    assert upstreams.count("server ") == 8
    assert "include /etc/numbas-lti/nginx/upstreams.conf;" in run.namespace["app"].nginx_conf


def test_exams_are_served_from_a_host_of_their_own(run):
    cfg = run.namespace["cfg"]
    assert cfg.exam_domain == f"exams.{cfg.domain}"
    named = containers(run)
    for name in (by_role(run, "daphne")[0], by_role(run, "huey")[0]):
        envs = plain(named[name].inputs["envs"])
        assert f"EXAM_ORIGIN=https://{cfg.exam_domain}" in envs and "EXAM_MATHJAX=local" in envs, name
    assert f"EXAM_ORIGIN=https://{cfg.exam_domain}\n" in plain(run.mocks.named("app-migrate").inputs["stdin"])
    conf = run.namespace["app"].nginx_conf
    assert f"server_name {cfg.exam_domain};" in conf and "location ^~ /media/exams/" not in conf
    # One certificate names both hosts: the bootstrap one and Let's Encrypt's.
    (bootstrap,) = run.mocks.of_type("tls:index/selfSignedCert:SelfSignedCert")
    assert bootstrap.inputs["dnsNames"] == [cfg.domain, cfg.exam_domain]
    certbot = named["numbas-lti-certbot"]
    assert f"EXAM_DOMAIN={cfg.exam_domain}" in certbot.inputs["envs"]
    assert '-d "$DOMAIN" -d "$EXAM_DOMAIN" --cert-name "$DOMAIN"' in certbot.inputs["command"][0]
    assert "--expand" in certbot.inputs["command"][0]


def test_an_exam_host_outside_the_dns_zone_is_left_to_the_operator():
    run = run_program("staging", {"examDomain": "numbas-exams.example.net", "examMathjax": "cdn"})
    records = run.mocks.of_type(HETZNER + "zoneRrset:ZoneRrset")
    assert {r.inputs["name"] for r in records} == {run.namespace["cfg"].domain.removesuffix(".example.ac.uk")}
    told = run.namespace["dns_records"](["203.0.113.10", "2001:db8::1"])
    assert told == ("numbas-staging.example.ac.uk: managed in Hetzner DNS; create A numbas-exams.example.net -> "
                    "203.0.113.10 and AAAA numbas-exams.example.net -> 2001:db8::1 at your DNS provider")
    envs = plain(containers(run)[by_role(run, "daphne")[0]].inputs["envs"])
    assert "EXAM_ORIGIN=https://numbas-exams.example.net" in envs and "EXAM_MATHJAX=cdn" in envs
    assert "return 302 https://cdnjs.cloudflare.com/ajax/libs/mathjax/2.7.9/" in run.namespace["app"].nginx_conf


def test_only_nginx_publishes_ports_and_images_are_pinned(run):
    named = containers(run)
    published = {n for n, c in named.items() if c.inputs.get("ports")}
    assert published == {"numbas-lti-nginx"}
    # On the host's IPv4 and IPv6 addresses (the AAAA record points at the server too).
    assert sorted((p["external"], p["internal"], p["ip"]) for p in named["numbas-lti-nginx"].inputs["ports"]) == [
        (80, 80, "0.0.0.0"), (80, 80, "::"), (443, 443, "0.0.0.0"), (443, 443, "::")]
    for image in run.mocks.of_type("docker:index/remoteImage:RemoteImage"):
        name = image.inputs["name"]
        assert ":" in name and not name.endswith(":latest"), name
    (app_image,) = [i for i in run.mocks.of_type("docker:index/image:Image") if i.name == "app-app-image"]
    assert app_image.inputs["build"]["dockerfile"].endswith("app/Dockerfile")
    assert not app_image.inputs["imageName"].endswith(":latest")


def test_every_long_running_container_restarts_and_has_a_health_check(run):
    for name, c in containers(run).items():
        assert c.inputs["restart"] == "unless-stopped" and c.inputs.get("healthcheck"), name
        # As Docker reads them back (Go durations): written otherwise, every run would show a diff.
        for key in ("interval", "timeout", "startPeriod"):
            assert re.fullmatch(r"(\d+h)?(\d+m)?\d+s", c.inputs["healthcheck"][key]), (name, c.inputs["healthcheck"])
    assert containers(run)["numbas-lti-certbot"].inputs["healthcheck"]["interval"] == "5m0s"
    migrate = run.mocks.named("app-migrate")
    assert "migrate --noinput" in migrate.inputs["create"] and "collectstatic --noinput" in migrate.inputs["create"]


def test_the_app_is_replaced_only_after_the_migration_succeeds(run):
    deps = run.namespace["app"].dependencies
    app_names = [n for n in deps if n.startswith(("numbas-lti-daphne-", "numbas-lti-huey-"))]
    assert app_names and all(deps[n] == ["app-migrate"] for n in app_names)
    assert deps["numbas-lti-nginx"] == ["app-nginx-config"]


def test_secrets_are_secret(run):
    app, server = run.namespace["app"], run.namespace["server"]
    assert is_secret(app.database_password) and is_secret(app.django_secret_key)
    for container in [*app.daphnes, *app.hueys, app.postgres]:
        assert is_secret(container.envs), container._name
    assert is_secret(app.migrate.stdin) and is_secret(app.nginx_files.stdin)  # the env file; the bootstrap key
    assert is_secret(server.server.user_data)  # it carries the SSH host's private key
    named = containers(run)
    daphne, huey = by_role(run, "daphne")[0], by_role(run, "huey")[0]
    for name in [daphne, huey, "numbas-lti-postgres"]:
        assert was_secret(named[name].inputs["envs"]), name  # what the engine stores is the secret wrapper
    assert was_secret(run.mocks.named("app-migrate").inputs["stdin"])
    assert was_secret(run.mocks.named("app-nginx-config").inputs["stdin"])
    assert "SECRET_KEY=generated-app-secret-key" in plain(named[daphne].inputs["envs"])
    assert any(e.startswith("DATABASE_URL=postgres://numbas_lti:generated-app-db-password@")
               for e in plain(named[huey].inputs["envs"]))
    assert not was_secret(named["numbas-lti-nginx"].inputs["envs"])  # nothing secret in it


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"domain": None}, "pulumi config set domain"),
        ({"domain": "not a host"}, "not a host name"),
        ({"adminCidrs": None}, "pulumi config set --path 'adminCidrs[0]'"),
        ({"adminCidrs": ["0.0.0.0/0"]}, "must not be open to the whole internet"),
        ({"sshPublicKeys": ["hello"]}, "not an OpenSSH public key"),
        ({"acmeEmail": "nobody"}, "not an e-mail address"),
        ({"daphneReplicas": 0}, "between 1 and 32"),
        ({"dnsZone": "other.org"}, "not inside"),
        ({"examDomain": "numbas-staging.example.ac.uk"}, "must be a host name of its own"),
        ({"examDomain": "exams example"}, "pulumi config set examDomain"),
        ({"examMathjax": "sometimes"}, "pulumi config set examMathjax local"),
    ],
)
def test_missing_or_invalid_config_fails_with_the_key_and_the_command(overrides, message):
    from numbas_infra.config import ConfigError

    with pytest.raises(Exception) as error:
        run_program("staging", overrides)
    chain = [error.value, *([error.value.__cause__] if error.value.__cause__ else [])]
    text = " ".join(str(e) for e in chain)
    assert message in text, text
    assert any(isinstance(e, ConfigError) for e in chain) or "ConfigError" in text
