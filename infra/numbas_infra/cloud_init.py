"""The server's cloud-init user-data, as a pure function (validated by `cloud-init schema` in
the tests): Docker from Debian's packages with log rotation, the Hetzner volumes mounted by
id (formatted only when provably blank, never started without), key-only SSH with a host key
fixed in advance, and unattended security upgrades."""

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


MARKER = ".numbas-lti-volume"  # at the root of each volume's filesystem: the Hetzner volume id

# Formats the volume only when it is provably blank, mounts it by id, and checks that what is
# mounted is this volume. Any doubt stops the script (and so cloud-init: see VOLUMES_READY) with
# the reason in /var/log/cloud-init-output.log, the volume neither formatted nor mounted.
# - `blkid -p` probes the device itself (no cache). It exits 0 when it finds a signature, 8 when
#   it finds several, and 2 when it finds none -- but also when it cannot open or read the device
#   (util-linux 2.38, misc-utils/blkid.c: lowprobe_device returns "not found" for those), so a
#   2 is believed only for a device of a sane size that reads back zeros at both ends.
# - mkfs.ext4 gets no -F, but mke2fs 1.47 overwrites a filesystem without asking when stdin is
#   not a terminal, so the checks above are what protects the data; nodiscard keeps the blocks.
# - The empty mount point is made immutable, so nothing can write there while the volume is not
#   mounted (Docker's bind mounts then fail instead of filling the root disk).
MOUNT_SCRIPT = r"""set -eu
dev='%(dev)s' mnt='%(mnt)s' volume='%(volume)s' fstab=/etc/fstab
say() { echo "numbas-lti: volume $volume ($dev, $mnt): $*"; }
refuse() {
  say "$*" >&2
  say "refusing to format or mount it; fix it by hand, then run /var/lib/cloud/instance/scripts/runcmd again" >&2
  exit 1
}
oneline() { printf '%%s' "$1" | tr '\n' ' '; }
i=0
while [ ! -b "$dev" ]; do
  i=$((i + 1))
  [ "$i" -le 150 ] || refuse "the device did not appear within 5 minutes (is the volume attached?)"
  sleep 2
done
if command -v udevadm >/dev/null 2>&1; then udevadm settle --timeout=60 || true; fi
formatted=no
if mountpoint -q "$mnt"; then
  say "already mounted"
else
  status=0
  probe=$(blkid -p -o export "$dev" 2>&1) || status=$?
  case "$status" in
    0)
      type=$(printf '%%s\n' "$probe" | sed -n 's/^TYPE=//p')
      [ "$type" = ext4 ] || refuse "blkid -p found something other than ext4: $(oneline "$probe")"
      ;;
    2)
      [ -z "$probe" ] || refuse "blkid -p could not probe the device: $(oneline "$probe")"
      size=$(blockdev --getsize64 "$dev" 2>/dev/null) || size=0
      [ "$size" -ge %(min_size)d ] || refuse "blkid -p found no signature, but the device has $size bytes (not ready?)"
      cmp -s -n %(probe)d "$dev" /dev/zero \
        || refuse "blkid -p found no signature, but the first %(probe_mib)d MiB are not all zeros (or not readable)"
      dd if="$dev" bs=1048576 skip=$((size / 1048576 - %(probe_mib)d)) count=%(probe_mib)d 2>/dev/null \
        | cmp -s -n %(probe)d - /dev/zero \
        || refuse "blkid -p found no signature, but the last %(probe_mib)d MiB are not all zeros (or not readable)"
      say "blank (no signature, zeros at both ends): creating an ext4 filesystem"
      mkfs.ext4 -q -E nodiscard "$dev" </dev/null || refuse "mkfs.ext4 failed"
      formatted=yes
      ;;
    *)
      refuse "blkid -p failed with status $status: $(oneline "$probe")"
      ;;
  esac
  mkdir -p "$mnt"
  chattr +i "$mnt" 2>/dev/null || say "could not make the empty mount point immutable (continuing)"
  grep -q '^%(dev)s ' "$fstab" || echo '%(dev)s %(mnt)s ext4 discard,nofail,defaults 0 2' >> "$fstab"
  mount -t ext4 -o discard,defaults "$dev" "$mnt" || refuse "mount failed"
fi
source=$(findmnt -n -o SOURCE --mountpoint "$mnt") || refuse "nothing is mounted on $mnt"
[ "$(readlink -f "$source")" = "$(readlink -f "$dev")" ] || refuse "$mnt has $source mounted, not this volume"
marker="$mnt/%(marker)s"
if [ -f "$marker" ]; then
  found=$(cat "$marker")
  if [ "$found" != "$volume" ]; then
    umount "$mnt"
    refuse "the filesystem on it belongs to volume $found (its $marker says so)"
  fi
else
  [ "$formatted" = yes ] || say "marking the existing filesystem as this volume's"
  { printf '%%s\n' "$volume" > "$marker.tmp" && mv -f "$marker.tmp" "$marker"; } || refuse "cannot write $marker"
fi
say mounted"""
PROBE_MIB = 16


def _mount_script(volume: VolumeMount) -> str:
    dev, mnt = device(volume.volume_id), volume.mount_point
    lines = [
        MOUNT_SCRIPT % {"dev": dev, "mnt": mnt, "volume": volume.volume_id, "marker": MARKER,
                        "probe": PROBE_MIB << 20, "probe_mib": PROBE_MIB, "min_size": 2 * PROBE_MIB << 20},
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


DOCKER_NEEDS_VOLUMES = "/etc/systemd/system/docker.service.d/10-numbas-lti-volumes.conf"


def docker_needs_volumes(volumes: list[VolumeMount]) -> str:
    """A drop-in for docker.service: after a reboot (runcmd runs only at the first boot) Docker,
    and so PostgreSQL, does not start unless the volumes are mounted (they are `nofail` in fstab)."""
    return ("[Unit]\n# The containers keep their data on the Hetzner volumes: never start them without.\n"
            f"RequiresMountsFor={' '.join(v.mount_point for v in volumes)}\n")


def volumes_ready(volumes: list[VolumeMount]) -> str:
    """Fails unless every volume is mounted with its own marker. runcmd is one script whose status
    is its last command's, so this goes last: a volume that was refused makes cloud-init report
    an error, and the deploy that waits for cloud-init stops there."""
    checks = " && ".join(f"mountpoint -q {v.mount_point} && [ \"$(cat {v.mount_point}/{MARKER})\" = {v.volume_id} ]"
                         for v in volumes)
    return (f"{checks} || {{ echo 'numbas-lti: a data volume is not mounted (see above); "
            f"not continuing' >&2; exit 1; }}")


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
            {"path": DOCKER_NEEDS_VOLUMES, "permissions": "0644", "content": docker_needs_volumes(volumes)},
        ],
        "runcmd": [
            *(["sh", "-c", _mount_script(v)] for v in volumes),
            ["systemctl", "restart", "ssh"],
            ["systemctl", "daemon-reload"],  # the volumes' mount units, from /etc/fstab
            ["systemctl", "enable", "--now", "docker"],
            ["systemctl", "restart", "docker"],
            ["sh", "-c", volumes_ready(volumes)],  # last: cloud-init's status is this one's
        ],
    }
    return "#cloud-config\n" + yaml.safe_dump(document, sort_keys=False, width=1000)
