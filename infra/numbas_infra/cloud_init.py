"""The server's cloud-init user-data, as a pure function (validated by `cloud-init schema` in
the tests): Docker from Debian's packages with log rotation, the Hetzner volumes mounted by
id, key-only SSH with a host key fixed in advance, and unattended security upgrades."""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass

import yaml

from numbas_infra import spec

DOCKER_DAEMON = {"log-driver": "json-file", "log-opts": {"max-size": "10m", "max-file": "5"}, "live-restore": True}
SSHD_CONFIG = """\
# Written by cloud-init (numbas-lti): keys only.
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
X11Forwarding no
"""
AUTO_UPGRADES = """\
APT::Periodic::Update-Package-Lists "1";
APT::Periodic::Unattended-Upgrade "1";
APT::Periodic::AutocleanInterval "7";
"""
APP_UID = 10001  # the app image's user (app/Dockerfile)
POSTGRES_UID = 999  # the postgres image's user


@dataclass(frozen=True)
class Directory:
    """A directory at the top of a volume, and who may read what is below it."""

    path: str  # under the mount point
    uid: int  # its owner
    gid: int | None = None  # its group; None: the owner's own (uid)
    # Set with the group on it and on everything already below it (a volume that served an older
    # deploy), every time: None leaves the modes alone. A setgid dir_mode passes the group down.
    dir_mode: int | None = None
    file_mode: int | None = None


@dataclass(frozen=True)
class VolumeMount:
    volume_id: str  # Hetzner volume id: the device is /dev/disk/by-id/scsi-0HC_Volume_<id>
    mount_point: str
    directories: tuple[Directory, ...]


def device(volume_id: str) -> str:
    return f"/dev/disk/by-id/scsi-0HC_Volume_{volume_id}"


def _mount_script(volume: VolumeMount) -> str:
    dev, mnt = device(volume.volume_id), volume.mount_point
    lines = [
        "set -eu",
        f"for i in $(seq 1 60); do [ -e {dev} ] && break; sleep 2; done",
        f"blkid {dev} >/dev/null || mkfs.ext4 -F {dev}",  # Hetzner formats it; this covers a blank one
        f"mkdir -p {mnt}",
        f"grep -q '^{dev} ' /etc/fstab || echo '{dev} {mnt} ext4 discard,nofail,defaults 0 2' >> /etc/fstab",
        f"mountpoint -q {mnt} || mount {mnt}",
    ]
    for directory in volume.directories:
        lines += directory_lines(mnt, directory)
    return "\n".join(lines)


def directory_lines(mount_point: str, directory: Directory) -> list[str]:
    """Shell lines that create the directory or put an existing one (and what is in it) right.
    Idempotent, and they touch only what is wrong; symbolic links are never followed."""
    path = shlex.quote(f"{mount_point}/{directory.path}")
    gid = directory.uid if directory.gid is None else directory.gid
    lines = [f"mkdir -p {path}", f"chown {directory.uid}:{gid} {path}"]
    if directory.gid is not None:
        lines.append(f"find {path} ! -group {gid} -exec chgrp -h {gid} {{}} +")
    if directory.dir_mode is not None:
        lines.append(f"find {path} -type d ! -perm {directory.dir_mode:04o} -exec chmod {directory.dir_mode:04o} {{}} +")
    if directory.file_mode is not None:
        lines.append(f"find {path} -type f ! -perm {directory.file_mode:04o} -exec chmod {directory.file_mode:04o} {{}} +")
    return lines


def files_directories(*, uid: int = APP_UID, gid: int = spec.FILES_GID) -> tuple[Directory, ...]:
    """media/ and private/ on the files volume: the app's, in nginx's group (spec.py says why).
    The local production-shaped stack prepares its own with the same lines (tests/support/stack.py)."""
    return (
        Directory("media", uid, gid, spec.MEDIA_DIR_MODE, spec.MEDIA_FILE_MODE),
        Directory("private", uid, gid, spec.PRIVATE_DIR_MODE, spec.PRIVATE_FILE_MODE),
    )


def volumes_for(data_volume_id: str, files_volume_id: str) -> list[VolumeMount]:
    return [
        VolumeMount(data_volume_id, spec.DATA_MOUNT, (Directory("postgres", POSTGRES_UID), Directory("redis", 999))),
        VolumeMount(files_volume_id, spec.FILES_MOUNT, files_directories()),
    ]


def user_data(*, host_key_private: str, host_key_public: str, volumes: list[VolumeMount]) -> str:
    document = {
        "package_update": True,
        "package_upgrade": True,
        "packages": ["docker.io", "unattended-upgrades", "apt-listchanges"],
        "ssh_pwauth": False,
        "ssh_deletekeys": True,
        "ssh_genkeytypes": ["ed25519"],  # the provided ed25519 key is used; no other types
        "ssh_keys": {"ed25519_private": host_key_private, "ed25519_public": host_key_public},
        "write_files": [
            {"path": "/etc/docker/daemon.json", "permissions": "0644", "content": json.dumps(DOCKER_DAEMON, indent=2)},
            {"path": "/etc/ssh/sshd_config.d/10-numbas-lti.conf", "permissions": "0644", "content": SSHD_CONFIG},
            {"path": "/etc/apt/apt.conf.d/20auto-upgrades", "permissions": "0644", "content": AUTO_UPGRADES},
        ],
        "runcmd": [
            *(["sh", "-c", _mount_script(v)] for v in volumes),
            ["systemctl", "restart", "ssh"],
            ["systemctl", "enable", "--now", "docker"],
            ["systemctl", "restart", "docker"],
        ],
    }
    return "#cloud-config\n" + yaml.safe_dump(document, sort_keys=False, width=1000)
