"""Numbas LTI Provider on Hetzner Cloud: read the stack's config, build the components, export
what an operator needs. Each concern lives in numbas_infra/ (see its modules)."""

import pulumi

from numbas_infra import config
from numbas_infra.app_stack import AppStack
from numbas_infra.hetzner import Dns, Firewall, Server

cfg = config.load()
firewall = Firewall("firewall", cfg)
server = Server("server", cfg, firewall=firewall)
if cfg.dns_zone:
    Dns("dns", cfg, server=server)
app = AppStack("app", cfg, server=server)

site = f"https://{cfg.domain}"
pulumi.export("site_url", site)
pulumi.export("ipv4", server.ipv4_address)
pulumi.export("ipv6", server.ipv6_address)
pulumi.export("ssh", server.ipv4_address.apply(lambda ip: f"ssh root@{ip}"))
pulumi.export("lti_launch_url", f"{site}/lti/launch/")
pulumi.export("lti_config_xml", f"{site}/lti/config.xml")
pulumi.export("admin_url", f"{site}/admin/")
pulumi.export("exam_origin", f"https://{cfg.exam_domain}")


def dns_records(addresses: list[str]) -> str:
    ipv4, ipv6 = addresses
    managed = [host for host in (cfg.domain, cfg.exam_domain) if cfg.in_dns_zone(host)]
    lines = [f"{', '.join(managed)}: managed in Hetzner DNS"] if managed else []
    lines += [f"create A {host} -> {ipv4} and AAAA {host} -> {ipv6} at your DNS provider" for host in cfg.unmanaged_hosts]
    return "; ".join(lines)


pulumi.export("dns_records", pulumi.Output.all(server.ipv4_address, server.ipv6_address).apply(dns_records))
pulumi.export("database_password", app.database_password)  # secret: shown only with --show-secrets


def backup_exports() -> dict[str, object]:
    """The backups' encryption secrets (secret outputs): keep a copy outside the server and the
    state, or the backups cannot be read after losing both (README: Backups)."""
    if cfg.offsite is None:
        return {}
    where = cfg.offsite.settings
    return {"backup_cipher_pass": pulumi.Output.secret(app.backup_cipher_pass.result),
            "backup_restic_password": pulumi.Output.secret(app.backup_restic_password.result),
            "backup_repository": f"s3://{where.endpoint}/{where.bucket}/{where.prefix}"}


for _name, _value in backup_exports().items():
    pulumi.export(_name, _value)
