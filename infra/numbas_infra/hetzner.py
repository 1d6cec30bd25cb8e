"""Hetzner Cloud resources, as components by concern: the server (with its SSH keys, primary
IPs, volumes, reverse DNS and pinned host key), its firewall, and DNS records."""

from __future__ import annotations

import hashlib
import shlex
from collections.abc import Sequence

import pulumi
import pulumi_command as command
import pulumi_hcloud as hcloud
import pulumi_tls as tls

from numbas_infra import cloud_init, spec
from numbas_infra.config import StackConfig

AUTHORIZED_KEYS = "/root/.ssh/authorized_keys"


def key_fingerprint(public_key: str) -> str:
    """A short, stable id for an OpenSSH public key: its type and key material, not its comment."""
    return hashlib.sha256(" ".join(public_key.split()[:2]).encode()).hexdigest()[:12]


def authorized_keys_script(keys: Sequence[str], *, path: str = AUTHORIZED_KEYS) -> str:
    """A shell script that makes `path` hold exactly `keys` (written to a temporary file in the
    same directory, mode 0600, then renamed over it), once cloud-init has finished: cloud-init
    writes the keys Hetzner passed at creation, and this list is the truth from then on. It
    writes them even if cloud-init failed, so that the admins can log in to see why."""
    unique = list(dict.fromkeys(k.strip() for k in keys if k.strip()))
    if not unique:
        raise ValueError("refusing to write an empty authorized_keys")
    return "\n".join([
        "set -eu",
        "s=0",
        "cloud-init status --wait >/dev/null 2>&1 || s=$?",
        'case "$s" in',
        "  0|2) ;;  # done; 2 = done with recoverable errors",
        '  *) echo "numbas-lti: cloud-init ended with status $s (see /var/log/cloud-init-output.log);'
        ' writing the SSH keys anyway" >&2 ;;',
        "esac",
        f"f={shlex.quote(path)}",
        'd=$(dirname "$f")',
        "umask 077",
        'mkdir -p "$d"',
        'chmod 700 "$d"',
        'tmp=$(mktemp "$d/.authorized_keys.XXXXXX")',
        """trap 'rm -f "$tmp"' EXIT""",
        "printf '%s\\n' " + " ".join(shlex.quote(k) for k in unique) + ' > "$tmp"',
        'chmod 600 "$tmp"',
        'mv -f "$tmp" "$f"',
        "trap - EXIT",
        f'echo "numbas-lti: $f holds {len(unique)} keys"',
    ])


def release_volumes_script(mount_points: Sequence[str]) -> str:
    """What runs on the server before its volumes are detached (a replacement or a destroy):
    stop every container (PostgreSQL shuts down cleanly within 120 s; a stopped container is
    not restarted), flush and unmount the volumes. The unmount is the check: it fails while
    anything still uses a volume, and then so does this script. Docker itself keeps running, so
    that the docker provider can still remove containers at the same time."""
    return "\n".join([
        "set -u",
        "fail=0",
        "if command -v docker >/dev/null 2>&1 && systemctl is-active --quiet docker; then",
        "  ids=$(docker ps -q)",
        '  if [ -n "$ids" ]; then docker stop -t 120 $ids >/dev/null || true; fi',
        "fi",
        "sync",
        f"for m in {' '.join(shlex.quote(m) for m in mount_points)}; do",
        '  if mountpoint -q "$m"; then',
        '    umount "$m" || { echo "numbas-lti: $m is still in use:" >&2; fuser -vm "$m" >&2 || true; fail=1; }',
        "  fi",
        "done",
        'exit "$fail"',
    ])


def release_volumes_command(remote_script: str) -> str:
    """The local command (run where `pulumi up` runs, with the deploy key and the pinned host key
    from the state) that runs `remote_script` on the server over SSH. A server that cannot be
    reached at all (ssh exits 255) does not block its own replacement: the volumes are then
    detached as after a power cut (PostgreSQL recovers from its WAL). Any other failure stops
    `pulumi up` before a volume is detached."""
    return "\n".join([
        "set -u",
        'dir=$(mktemp -d) && trap \'rm -rf "$dir"\' EXIT',
        "umask 077",
        'printf \'%s\\n\' "$DEPLOY_KEY" > "$dir/key"',
        'printf \'%s %s\\n\' "$HOST" "$HOST_KEY" > "$dir/known_hosts"',
        "status=0",
        'ssh -i "$dir/key" -o IdentitiesOnly=yes -o UserKnownHostsFile="$dir/known_hosts" -o StrictHostKeyChecking=yes \\',
        '  -o BatchMode=yes -o ConnectTimeout=20 "root@$HOST" sh -s <<\'NUMBAS_LTI_RELEASE\' || status=$?',
        remote_script,
        "NUMBAS_LTI_RELEASE",
        'case "$status" in',
        "  0) ;;",
        '  255) echo "numbas-lti: cannot reach root@$HOST over SSH: its volumes are detached without stopping'
        ' its containers first" >&2 ;;',
        '  *) echo "numbas-lti: could not stop the containers or unmount the volumes on $HOST (status $status,'
        ' see above): not detaching them" >&2; exit "$status" ;;',
        "esac",
    ])


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
    volumes (PostgreSQL data, media and private files), mounted by cloud-init by id.

    Replacing the server (on purpose: `pulumi up --replace <the server's URN>`; a protected stack
    first needs `pulumi config set protect false && pulumi up`, and `protect true` again after):
    the server is deleted before its replacement is created, because the replacement takes its
    name and its primary IPs, which Hetzner gives to one server at a time. Pulumi then deletes
    first what depends on the old server, newest first: the release command stops the containers
    and unmounts the volumes over SSH, the volume attachments detach them, and the server is shut
    down (shutdown_before_deletion) and deleted. The new server gets the same IPs, the volumes are
    attached to it again (VolumeAttachment's server_id forces a new attachment), cloud-init mounts
    them without formatting, and the admin keys are written again.

    SSH keys: Hetzner installs `ssh_keys` only when it creates a server, and changing them would
    replace it, so the server ignores changes to them; `authorized_keys` (the admins' keys and
    the deploy key, exactly) is managed over SSH by `authorized_keys` instead, on every change of
    the keys or of the server. `connection` is that SSH connection (deploy key, pinned host key)
    for other components; `server_id` changes exactly when the server is replaced.
    """

    def __init__(self, name: str, cfg: StackConfig, *, firewall: Firewall, opts: pulumi.ResourceOptions | None = None):
        super().__init__("numbas-lti:hetzner:Server", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        protect = pulumi.ResourceOptions(parent=self, protect=cfg.protect)
        labels = {"app": "numbas-lti", "stack": cfg.stack}

        # One Hetzner SSH key per admin key, named by the key itself (not its position), so that
        # adding or removing a key never replaces another; Hetzner refuses two keys with the same
        # fingerprint, and a comment edit is not a new key. Aliases keep the keys of stacks made
        # when they were named by position.
        admin_keys = {key_fingerprint(key): key for key in cfg.ssh_public_keys}
        self.ssh_keys = [
            hcloud.SshKey(f"{name}-admin-{fp}", name=f"{cfg.name}-admin-{fp}", public_key=key, labels=labels,
                          opts=pulumi.ResourceOptions(parent=self, ignore_changes=["publicKey"],
                                                      aliases=[pulumi.Alias(name=f"{name}-admin-{i}")]))
            for i, (fp, key) in enumerate(admin_keys.items())
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
        self.ipv4_address = self.ipv4.ip_address
        # How other components run commands on the server: as root, with the deploy key, checking
        # the host key pinned in cloud-init.
        self.connection = command.remote.ConnectionArgs(
            host=self.ipv4_address, user="root", private_key=self.deploy_key.private_key_openssh,
            host_key=self.host_key.public_key_openssh.apply(str.strip), dial_error_limit=30,
        )
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
            # The replacement takes this server's name and primary IPs: the old one must go first.
            delete_before_replace=True,
            # SSH keys apply only at creation (see `authorized_keys`). Changing user data replaces
            # a server; in production that is done on purpose (pulumi up --replace), never as a
            # side effect.
            ignore_changes=["sshKeys", *(["userData"] if cfg.protect else [])],
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
            # An ACPI shutdown (systemd stops whatever still runs) before Hetzner deletes it; the
            # release command below has normally stopped the containers already.
            shutdown_before_deletion=True,
            labels=labels, opts=server_opts,
        )
        self.server_id = self.server.id
        self.attachments = [
            hcloud.VolumeAttachment(f"{name}-{role}-attachment", volume_id=volume.id.apply(int),
                                    server_id=self.server.id.apply(int), automount=False, opts=child)
            for role, volume in (("data", self.data_volume), ("files", self.files_volume))
        ]
        # Deleted (its delete command run) before the attachments whenever they go: on a
        # replacement of the server (triggers) and on a destroy.
        self.release_volumes = command.local.Command(
            f"{name}-release-volumes",
            delete=release_volumes_command(release_volumes_script([spec.DATA_MOUNT, spec.FILES_MOUNT])),
            environment={
                "DEPLOY_KEY": pulumi.Output.secret(self.deploy_key.private_key_openssh),
                "HOST": self.ipv4_address,
                "HOST_KEY": self.host_key.public_key_openssh.apply(str.strip),
            },
            triggers=[self.server.id],
            opts=pulumi.ResourceOptions(parent=self, depends_on=self.attachments),
        )
        # The admins' keys and the deploy key, exactly: a key removed from the config is removed
        # from the server. Replaced (so run again) when the keys or the server change.
        deploy_public_key = self.deploy_key.public_key_openssh.apply(str.strip)
        self.authorized_keys = command.remote.Command(
            f"{name}-authorized-keys",
            connection=self.connection,
            create=deploy_public_key.apply(lambda deploy: authorized_keys_script([*admin_keys.values(), deploy])),
            triggers=[self.server.id, deploy_public_key, *admin_keys.values()],
            add_previous_output_in_env=False,
            opts=child,
        )
        self.rdns = [
            hcloud.Rdns(f"{name}-rdns-ipv4", primary_ip_id=self.ipv4.id.apply(int), ip_address=self.ipv4.ip_address,
                        dns_ptr=cfg.domain, opts=child),
            hcloud.Rdns(f"{name}-rdns-ipv6", primary_ip_id=self.ipv6.id.apply(int),
                        ip_address=self.ipv6.ip_address.apply(lambda a: a.split("/")[0].rstrip(":") + "::1" if "/" in a else a),
                        dns_ptr=cfg.domain, opts=child),
        ]
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
