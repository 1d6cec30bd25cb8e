"""Hetzner Cloud resources, as components by concern: the server (with its SSH keys, primary
IPs, volumes, reverse DNS and pinned host key), its firewall, and DNS records."""

from __future__ import annotations

import pulumi
import pulumi_hcloud as hcloud
import pulumi_tls as tls

from numbas_infra import cloud_init
from numbas_infra.config import StackConfig


def firewall_rules(admin_cidrs: tuple[str, ...]) -> list[hcloud.FirewallRuleArgs]:
    """80 and 443 from anywhere, 22 from the admins' networks, ICMP; nothing else inbound."""
    anywhere = ["0.0.0.0/0", "::/0"]
    return [
        hcloud.FirewallRuleArgs(direction="in", protocol="tcp", port="80", source_ips=anywhere, description="HTTP (ACME, redirect)"),
        hcloud.FirewallRuleArgs(direction="in", protocol="tcp", port="443", source_ips=anywhere, description="HTTPS"),
        hcloud.FirewallRuleArgs(direction="in", protocol="tcp", port="22", source_ips=list(admin_cidrs), description="SSH from admins"),
        hcloud.FirewallRuleArgs(direction="in", protocol="icmp", source_ips=anywhere, description="ICMP"),
    ]


class Firewall(pulumi.ComponentResource):
    def __init__(self, name: str, cfg: StackConfig, opts: pulumi.ResourceOptions | None = None):
        super().__init__("numbas-lti:hetzner:Firewall", name, None, opts)
        self.firewall = hcloud.Firewall(
            name, name=cfg.name, rules=firewall_rules(cfg.admin_cidrs), labels={"app": "numbas-lti", "stack": cfg.stack},
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"id": self.firewall.id})


class Server(pulumi.ComponentResource):
    """The VPS and what must outlive it: primary IPs (the address survives a replacement) and
    volumes (PostgreSQL data, media and private files), mounted by cloud-init by id."""

    def __init__(self, name: str, cfg: StackConfig, *, firewall: Firewall, opts: pulumi.ResourceOptions | None = None):
        super().__init__("numbas-lti:hetzner:Server", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        protect = pulumi.ResourceOptions(parent=self, protect=cfg.protect)
        labels = {"app": "numbas-lti", "stack": cfg.stack}

        self.ssh_keys = [
            hcloud.SshKey(f"{name}-admin-{i}", name=f"{cfg.name}-admin-{i}", public_key=key, labels=labels, opts=child)
            for i, key in enumerate(cfg.ssh_public_keys)
        ]
        # The deploy connects with this key pair: generated here, kept secret in the state.
        self.deploy_key = tls.PrivateKey(f"{name}-deploy-key", algorithm="ED25519", opts=child)
        self.deploy_ssh_key = hcloud.SshKey(f"{name}-deploy", name=f"{cfg.name}-deploy",
                                            public_key=self.deploy_key.public_key_openssh, labels=labels, opts=child)
        # The server's SSH host key, fixed in advance so the deploy can check it.
        self.host_key = tls.PrivateKey(f"{name}-host-key", algorithm="ED25519", opts=child)

        self.ipv4 = hcloud.PrimaryIp(f"{name}-ipv4", name=f"{cfg.name}-ipv4", type="ipv4", location=cfg.location,
                                     assignee_type="server", auto_delete=False, delete_protection=cfg.protect,
                                     labels=labels, opts=protect)
        self.ipv6 = hcloud.PrimaryIp(f"{name}-ipv6", name=f"{cfg.name}-ipv6", type="ipv6", location=cfg.location,
                                     assignee_type="server", auto_delete=False, delete_protection=cfg.protect,
                                     labels=labels, opts=protect)
        self.data_volume = hcloud.Volume(f"{name}-data", name=f"{cfg.name}-data", size=cfg.data_volume_gb,
                                         location=cfg.location, format="ext4", automount=False,
                                         delete_protection=cfg.protect, labels={**labels, "holds": "postgres-redis"},
                                         opts=protect)
        self.files_volume = hcloud.Volume(f"{name}-files", name=f"{cfg.name}-files", size=cfg.files_volume_gb,
                                          location=cfg.location, format="ext4", automount=False,
                                          delete_protection=cfg.protect, labels={**labels, "holds": "media-private"},
                                          opts=protect)

        self.user_data = pulumi.Output.all(
            self.host_key.private_key_openssh, self.host_key.public_key_openssh,
            self.data_volume.id, self.files_volume.id,
        ).apply(lambda v: cloud_init.user_data(
            host_key_private=v[0], host_key_public=v[1].strip(), volumes=cloud_init.volumes_for(v[2], v[3]),
        ))
        server_opts = pulumi.ResourceOptions(
            parent=self, protect=cfg.protect,
            # Changing user data or keys replaces a server; in production that is done on purpose
            # (pulumi up --replace), never as a side effect.
            ignore_changes=["userData", "sshKeys"] if cfg.protect else None,
        )
        self.server = hcloud.Server(
            name, name=cfg.name, server_type=cfg.server_type, image=cfg.image, location=cfg.location,
            ssh_keys=[k.id for k in [*self.ssh_keys, self.deploy_ssh_key]],
            user_data=pulumi.Output.secret(self.user_data),  # it carries the host's private key
            public_nets=[hcloud.ServerPublicNetArgs(
                ipv4_enabled=True, ipv4=self.ipv4.id.apply(int), ipv6_enabled=True, ipv6=self.ipv6.id.apply(int),
            )],
            firewall_ids=[firewall.firewall.id.apply(int)],
            backups=cfg.backups, delete_protection=cfg.protect, rebuild_protection=cfg.protect,
            labels=labels, opts=server_opts,
        )
        self.attachments = [
            hcloud.VolumeAttachment(f"{name}-{role}-attachment", volume_id=volume.id.apply(int),
                                    server_id=self.server.id.apply(int), automount=False, opts=child)
            for role, volume in (("data", self.data_volume), ("files", self.files_volume))
        ]
        self.rdns = [
            hcloud.Rdns(f"{name}-rdns-ipv4", primary_ip_id=self.ipv4.id.apply(int), ip_address=self.ipv4.ip_address,
                        dns_ptr=cfg.domain, opts=child),
            hcloud.Rdns(f"{name}-rdns-ipv6", primary_ip_id=self.ipv6.id.apply(int),
                        ip_address=self.ipv6.ip_address.apply(lambda a: a.split("/")[0].rstrip(":") + "::1" if "/" in a else a),
                        dns_ptr=cfg.domain, opts=child),
        ]
        self.ipv4_address = self.ipv4.ip_address
        self.ipv6_address = self.rdns[1].ip_address
        self.register_outputs({"ipv4": self.ipv4_address, "ipv6": self.ipv6_address})


class Dns(pulumi.ComponentResource):
    """A and AAAA records for the site and its exam-content host, in the Hetzner DNS zone (when one
    is configured; a host outside the zone is left to the operator, see the dns_records output)."""

    def __init__(self, name: str, cfg: StackConfig, *, server: Server, opts: pulumi.ResourceOptions | None = None):
        super().__init__("numbas-lti:hetzner:Dns", name, None, opts)
        assert cfg.dns_zone
        child = pulumi.ResourceOptions(parent=self)

        def records(prefix: str, host: str) -> tuple[hcloud.ZoneRrset, hcloud.ZoneRrset]:
            record_name = "@" if host == cfg.dns_zone else host[: -len(cfg.dns_zone) - 1]
            return (
                hcloud.ZoneRrset(f"{name}-{prefix}a", zone=cfg.dns_zone, name=record_name, type="A", ttl=300,
                                 records=[hcloud.ZoneRrsetRecordArgs(value=server.ipv4_address)], opts=child),
                hcloud.ZoneRrset(f"{name}-{prefix}aaaa", zone=cfg.dns_zone, name=record_name, type="AAAA", ttl=300,
                                 records=[hcloud.ZoneRrsetRecordArgs(value=server.ipv6_address)], opts=child),
            )

        self.a, self.aaaa = records("", cfg.domain)
        self.exam_a = self.exam_aaaa = None
        if cfg.in_dns_zone(cfg.exam_domain):
            self.exam_a, self.exam_aaaa = records("exam-", cfg.exam_domain)
        self.register_outputs({})
