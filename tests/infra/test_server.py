"""The server and what it relies on, tested for real where it can be:

- the volume script that cloud-init runs, taken from the rendered user-data and run as root
  against loop devices (skipped, with the reason, where there are none): a blank device is
  formatted once; an ext4 volume with data is mounted untouched; a device whose probe fails or
  that holds anything but provably nothing is neither formatted nor mounted;
- the authorized_keys script, run with its path in a temporary directory and a fake cloud-init;
- the release-before-detach command, run with a fake ssh;
- under mocks: the server shuts down before deletion, is deleted before its replacement,
  ignores SSH key changes (a key change replaces the keys command, not the server), and what
  depends on it is replaced with it in the right order.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
import yaml

from numbas_infra import cloud_init, spec
from tests.infra.program import REPLACED_ON, plain, plan, run_program

HOST_KEY_PRIVATE = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n"
HOST_KEY_PUBLIC = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHostKeyExample"
DATA_VOLUME, FILES_VOLUME = "100001", "100002"
MIB = 1 << 20
SERVER = "hcloud:index/server:Server"


# --- the volume script, on loop devices ------------------------------------------------------


def volume_script(volume_id: str = DATA_VOLUME) -> str:
    """The data volume's script exactly as cloud-init gets it."""
    document = yaml.safe_load(cloud_init.user_data(host_key_private=HOST_KEY_PRIVATE, host_key_public=HOST_KEY_PUBLIC,
                                                   volumes=cloud_init.volumes_for(DATA_VOLUME, FILES_VOLUME)))
    [script] = [c[2] for c in document["runcmd"] if c[:2] == ["sh", "-c"] and cloud_init.device(volume_id) in c[2]]
    return script


def _loop_devices_unavailable() -> str | None:
    if os.geteuid() != 0:
        return "needs root (losetup, mkfs, mount)"
    missing = [t for t in ("losetup", "blkid", "mkfs.ext4", "mount", "umount", "findmnt", "mountpoint", "blockdev")
               if shutil.which(t) is None]
    if missing:
        return f"missing {', '.join(missing)}"
    probe = Path(f"/tmp/numbas-lti-loop-probe-{os.getpid()}")
    try:
        probe.write_bytes(b"\0" * MIB)
        attached = subprocess.run(["losetup", "-f", "--show", str(probe)], capture_output=True, text=True)
        if attached.returncode != 0:
            return f"no loop devices here: {attached.stderr.strip()}"
        subprocess.run(["losetup", "-d", attached.stdout.strip()], check=True)
        return None
    finally:
        probe.unlink(missing_ok=True)


LOOP_UNAVAILABLE = _loop_devices_unavailable()
loop_devices = pytest.mark.skipif(LOOP_UNAVAILABLE is not None, reason=f"loop-device tests: {LOOP_UNAVAILABLE}")


class Volumes:
    """Loop devices and a mount point in a temporary directory, cleaned up whatever happens."""

    def __init__(self, root: Path):
        self.root, self.devices = root, []
        self.mnt, self.fstab = root / "mnt" / "data", root / "fstab"
        self.fstab.write_text("# test fstab\n")

    def attach(self, image: Path) -> str:
        device = subprocess.run(["losetup", "-f", "--show", str(image)], capture_output=True, text=True, check=True)
        self.devices.append(device.stdout.strip())
        return self.devices[-1]

    def image(self, name: str, size_mib: int = 64) -> Path:
        path = self.root / name
        with open(path, "wb") as f:
            f.truncate(size_mib * MIB)
        return path

    def run(self, device: str, script: str | None = None) -> subprocess.CompletedProcess:
        text = (script or volume_script()).replace(cloud_init.device(DATA_VOLUME), device)
        text = text.replace(spec.DATA_MOUNT, str(self.mnt)).replace("/etc/fstab", str(self.fstab))
        return subprocess.run(["sh", "-c", text], capture_output=True, text=True, timeout=120)

    def mounted(self) -> bool:
        return subprocess.run(["mountpoint", "-q", str(self.mnt)]).returncode == 0

    def unmount(self) -> None:
        if self.mounted():
            subprocess.run(["umount", str(self.mnt)], check=True)

    def cleanup(self) -> None:
        mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
        for mount in reversed(mounts):  # whatever a script mounted under the temporary directory
            if mount.startswith(str(self.root)):
                subprocess.run(["umount", mount], capture_output=True)
        if self.mnt.exists():
            subprocess.run(["chattr", "-i", str(self.mnt)], capture_output=True)
        for device in self.devices:
            subprocess.run(["losetup", "-d", device], capture_output=True)


@pytest.fixture
def volumes(tmp_path):
    v = Volumes(tmp_path)
    try:
        yield v
    finally:
        v.cleanup()


def uuid(device: str) -> str:
    return subprocess.run(["blkid", "-p", "-s", "UUID", "-o", "value", device], capture_output=True, text=True).stdout.strip()


def ext4_with_data(v: Volumes, name: str) -> Path:
    """An ext4 filesystem holding a PostgreSQL-like file, as a volume in use has (no marker:
    Hetzner formats volumes created with format=ext4, and older deploys wrote none)."""
    content = v.root / f"{name}-content"
    (content / "postgres").mkdir(parents=True)
    (content / "postgres" / "PG_VERSION").write_text("15\n")
    image = v.image(name)
    subprocess.run(["mkfs.ext4", "-q", "-d", str(content), str(image)], check=True, stdin=subprocess.DEVNULL)
    return image


@loop_devices
def test_a_blank_volume_is_formatted_once_and_marked_as_this_volume(volumes):
    device = volumes.attach(volumes.image("blank.img"))
    first = volumes.run(device)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "creating an ext4 filesystem" in first.stdout
    assert volumes.mounted() and (volumes.mnt / ".numbas-lti-volume").read_text() == f"{DATA_VOLUME}\n"
    assert (volumes.mnt / "postgres").is_dir() and (volumes.mnt / "redis").is_dir()
    formatted_as = uuid(device)
    (volumes.mnt / "postgres" / "PG_VERSION").write_text("15\n")
    assert volumes.fstab.read_text().count(f"{device} {volumes.mnt} ext4 discard,nofail,defaults 0 2") == 1

    again = volumes.run(device)  # cloud-init's runcmd re-run by hand, still mounted
    assert again.returncode == 0 and "already mounted" in again.stdout, again.stderr
    volumes.unmount()
    after_reboot = volumes.run(device)  # not mounted, holds our filesystem
    assert after_reboot.returncode == 0, after_reboot.stderr
    assert "creating" not in again.stdout + after_reboot.stdout
    assert uuid(device) == formatted_as and (volumes.mnt / "postgres" / "PG_VERSION").read_text() == "15\n"
    assert volumes.fstab.read_text().count(device) == 1


@loop_devices
def test_an_ext4_volume_with_data_is_mounted_untouched(volumes):
    device = volumes.attach(ext4_with_data(volumes, "used.img"))
    before = uuid(device)
    result = volumes.run(device)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "creating" not in result.stdout and "marking the existing filesystem" in result.stdout
    assert uuid(device) == before
    assert (volumes.mnt / "postgres" / "PG_VERSION").read_text() == "15\n"
    assert (volumes.mnt / ".numbas-lti-volume").read_text() == f"{DATA_VOLUME}\n"
    assert (volumes.mnt / "postgres").stat().st_uid == cloud_init.POSTGRES_UID


@loop_devices
def test_a_probe_that_fails_stops_the_script_without_formatting_or_mounting(volumes):
    # An ext4 filesystem that also carries a second signature (a squashfs superblock in ext4's
    # unused first kilobyte): `blkid -p` answers "ambivalent", status 8. The old script's plain
    # `blkid` answered "nothing" and mkfs -F wiped it.
    image = ext4_with_data(volumes, "ambivalent.img")
    with open(image, "r+b") as f:
        f.write(b"hsqs" + b"\0" * 24 + (4).to_bytes(2, "little"))
    data = image.read_bytes()
    device = volumes.attach(image)
    assert subprocess.run(["blkid", "-p", device], capture_output=True).returncode == 8
    result = volumes.run(device)
    assert result.returncode != 0
    assert "blkid -p failed with status 8" in result.stderr and "refusing to format or mount it" in result.stderr
    assert not volumes.mounted() and device not in volumes.fstab.read_text()
    assert image.read_bytes() == data  # not a byte written
    subprocess.run(["losetup", "-d", device], check=True)
    volumes.devices.remove(device)
    with open(image, "r+b") as f:  # the filesystem under it is intact
        f.write(b"\0" * 32)
    check = subprocess.run(["e2fsck", "-n", "-f", str(image)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr


@loop_devices
def test_no_signature_but_data_is_not_formatted(volumes):
    # blkid -p exits 2 ("nothing found") for a device whose superblock is gone but whose data is
    # there; only a device that reads back zeros is blank.
    image = ext4_with_data(volumes, "wiped-superblock.img")
    with open(image, "r+b") as f:
        f.seek(1024)
        f.write(b"\0" * 1024)  # ext4's primary superblock
    data = image.read_bytes()
    device = volumes.attach(image)
    assert subprocess.run(["blkid", "-p", device], capture_output=True).returncode == 2
    result = volumes.run(device)
    assert result.returncode != 0 and "not all zeros" in result.stderr, result.stdout + result.stderr
    assert not volumes.mounted() and image.read_bytes() == data


@loop_devices
def test_a_device_that_cannot_be_read_is_not_formatted(volumes):
    # A loop device with nothing behind it: blkid -p also exits 2 ("nothing found"), like a
    # volume that is attached but not ready; it must not be taken for a blank one.
    free = subprocess.run(["losetup", "-f"], capture_output=True, text=True, check=True).stdout.strip()
    assert subprocess.run(["blkid", "-p", free], capture_output=True).returncode == 2
    result = volumes.run(free)
    assert result.returncode != 0 and "the device has 0 bytes" in result.stderr, result.stdout + result.stderr
    assert not volumes.mounted() and free not in volumes.fstab.read_text()


@loop_devices
def test_another_volumes_filesystem_is_not_used(volumes):
    image = ext4_with_data(volumes, "other.img")
    device = volumes.attach(image)
    files_script = volume_script(FILES_VOLUME).replace(cloud_init.device(FILES_VOLUME), cloud_init.device(DATA_VOLUME))
    other = volumes.run(device, files_script.replace(spec.FILES_MOUNT, spec.DATA_MOUNT))
    assert other.returncode == 0, other.stderr  # now marked as the files volume
    volumes.unmount()
    result = volumes.run(device)
    assert result.returncode != 0 and f"belongs to volume {FILES_VOLUME}" in result.stderr
    assert not volumes.mounted()


@loop_devices
def test_nothing_can_be_written_to_the_mount_point_while_the_volume_is_not_mounted(volumes):
    device = volumes.attach(volumes.image("blank.img"))
    assert volumes.run(device).returncode == 0
    volumes.unmount()
    if "i" not in subprocess.run(["lsattr", "-d", str(volumes.mnt)], capture_output=True, text=True).stdout.split()[0]:
        pytest.skip("this filesystem does not support the immutable attribute")
    with pytest.raises(PermissionError):
        (volumes.mnt / "postgres").mkdir()


def test_cloud_init_reports_an_error_unless_every_volume_is_mounted_as_itself(tmp_path):
    document = yaml.safe_load(cloud_init.user_data(host_key_private=HOST_KEY_PRIVATE, host_key_public=HOST_KEY_PUBLIC,
                                                   volumes=cloud_init.volumes_for(DATA_VOLUME, FILES_VOLUME)))
    last = document["runcmd"][-1]
    assert last[:2] == ["sh", "-c"]
    for mount, volume in ((spec.DATA_MOUNT, DATA_VOLUME), (spec.FILES_MOUNT, FILES_VOLUME)):
        assert f"mountpoint -q {mount}" in last[2] and f"{mount}/.numbas-lti-volume" in last[2] and volume in last[2]
    # The fake mountpoint says "mounted"; the markers decide.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "mountpoint").write_text("#!/bin/sh\nexit 0\n")
    (bin_dir / "mountpoint").chmod(0o755)
    for mount in (spec.DATA_MOUNT, spec.FILES_MOUNT):
        (tmp_path / mount.strip("/")).mkdir(parents=True)
    script = last[2].replace(spec.DATA_MOUNT, str(tmp_path / spec.DATA_MOUNT.strip("/"))).replace(
        spec.FILES_MOUNT, str(tmp_path / spec.FILES_MOUNT.strip("/")))
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin"}
    (tmp_path / spec.DATA_MOUNT.strip("/") / ".numbas-lti-volume").write_text(f"{DATA_VOLUME}\n")
    assert subprocess.run(["sh", "-c", script], env=env, capture_output=True).returncode == 1
    (tmp_path / spec.FILES_MOUNT.strip("/") / ".numbas-lti-volume").write_text(f"{FILES_VOLUME}\n")
    assert subprocess.run(["sh", "-c", script], env=env, capture_output=True).returncode == 0
    drop_in = {f["path"]: f["content"] for f in document["write_files"]}[cloud_init.DOCKER_NEEDS_VOLUMES]
    assert f"RequiresMountsFor={spec.DATA_MOUNT} {spec.FILES_MOUNT}" in drop_in


# --- authorized_keys -------------------------------------------------------------------------

ADMIN_A = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAdminAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA alice@example.ac.uk"
ADMIN_B = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAdminBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB bob's laptop"
DEPLOY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDeployDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDD"


def run_keys_script(tmp_path: Path, keys: list[str], cloud_init_status: int = 0) -> subprocess.CompletedProcess:
    from numbas_infra.hetzner import authorized_keys_script

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    fake = bin_dir / "cloud-init"
    fake.write_text(f'#!/bin/sh\n[ "$*" = "status --wait" ] || exit 99\necho waited >> "{tmp_path}/waits"\n'
                    f"exit {cloud_init_status}\n")
    fake.chmod(0o755)
    script = authorized_keys_script(keys, path=str(tmp_path / "root" / ".ssh" / "authorized_keys"))
    return subprocess.run(["sh", "-c", script], env={"PATH": f"{bin_dir}:/usr/bin:/bin"},
                          capture_output=True, text=True, timeout=30)


def test_the_keys_script_writes_exactly_the_configured_keys_after_cloud_init(tmp_path):
    ssh_dir = tmp_path / "root" / ".ssh"
    ssh_dir.mkdir(parents=True)
    authorized = ssh_dir / "authorized_keys"
    authorized.write_text(f"{ADMIN_A}\nssh-rsa AAAAB3NzaC1yc2EOldKey mallory@gone\n{DEPLOY}\n")
    authorized.chmod(0o644)
    old_inode = authorized.stat().st_ino

    result = run_keys_script(tmp_path, [ADMIN_B, ADMIN_A, DEPLOY])
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "waits").read_text() == "waited\n"  # cloud-init was waited for
    assert authorized.read_text() == f"{ADMIN_B}\n{ADMIN_A}\n{DEPLOY}\n"  # mallory's key is gone
    assert stat.S_IMODE(authorized.stat().st_mode) == 0o600 and stat.S_IMODE(ssh_dir.stat().st_mode) == 0o700
    assert authorized.stat().st_ino != old_inode  # replaced by a rename, never half-written
    assert sorted(p.name for p in ssh_dir.iterdir()) == ["authorized_keys"]  # no temporary file left

    assert run_keys_script(tmp_path, [DEPLOY]).returncode == 0  # a key removed from the config
    assert authorized.read_text() == f"{DEPLOY}\n"


@pytest.mark.parametrize("status, warned", [(0, False), (2, False), (1, True)])
def test_the_keys_are_written_whatever_cloud_init_reported(tmp_path, status, warned):
    result = run_keys_script(tmp_path, [ADMIN_A, DEPLOY], cloud_init_status=status)
    assert result.returncode == 0, result.stderr
    assert ("cloud-init ended with status 1" in result.stderr) is warned
    assert (tmp_path / "root" / ".ssh" / "authorized_keys").read_text() == f"{ADMIN_A}\n{DEPLOY}\n"


def test_the_keys_script_refuses_to_lock_everyone_out():
    from numbas_infra.hetzner import authorized_keys_script

    with pytest.raises(ValueError):
        authorized_keys_script([" ", ""])


# --- releasing the volumes before they are detached --------------------------------------------


def run_release(tmp_path: Path, ssh_status: int) -> tuple[subprocess.CompletedProcess, Path]:
    """The release command's delete script with a fake ssh that records what it was given."""
    from numbas_infra.hetzner import release_volumes_command, release_volumes_script

    bin_dir, seen = tmp_path / "bin", tmp_path / "seen"
    bin_dir.mkdir(exist_ok=True)
    seen.mkdir(exist_ok=True)
    fake = bin_dir / "ssh"
    fake.write_text(f"""#!/bin/sh
echo "$@" > {seen}/args
while [ $# -gt 0 ]; do
  case "$1" in
    -i) cp "$2" {seen}/key; stat -c %a "$2" > {seen}/key-mode; shift ;;
    -o) case "$2" in UserKnownHostsFile=*) cp "${{2#UserKnownHostsFile=}}" {seen}/known_hosts ;; esac; shift ;;
  esac
  shift
done
cat > {seen}/stdin
exit {ssh_status}
""")
    fake.chmod(0o755)
    script = release_volumes_command(release_volumes_script([spec.DATA_MOUNT, spec.FILES_MOUNT]))
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "DEPLOY_KEY": "-----PRIVATE deploy-----", "HOST": "203.0.113.10",
           "HOST_KEY": HOST_KEY_PUBLIC}
    return subprocess.run(["sh", "-c", script], env=env, capture_output=True, text=True, timeout=30), seen


def test_the_release_stops_the_containers_and_unmounts_over_ssh_with_the_pinned_host_key(tmp_path):
    result, seen = run_release(tmp_path, 0)
    assert result.returncode == 0, result.stderr
    args = (seen / "args").read_text()
    assert "StrictHostKeyChecking=yes" in args and "BatchMode=yes" in args and "root@203.0.113.10 sh -s" in args
    assert (seen / "known_hosts").read_text() == f"203.0.113.10 {HOST_KEY_PUBLIC}\n"
    assert (seen / "key").read_text() == "-----PRIVATE deploy-----\n" and (seen / "key-mode").read_text() == "600\n"
    remote = (seen / "stdin").read_text()
    assert remote.index("docker stop -t 120") < remote.index("sync") < remote.index("umount")
    assert f"for m in {spec.DATA_MOUNT} {spec.FILES_MOUNT}; do" in remote


def test_the_remote_release_script_stops_then_unmounts_and_fails_on_a_busy_volume(tmp_path):
    from numbas_infra.hetzner import release_volumes_script

    bin_dir, log = tmp_path / "bin", tmp_path / "log"
    bin_dir.mkdir()
    fakes = {
        "docker": 'if [ "$1" = ps ]; then echo c1; echo c2; else echo "docker $*" >> LOG; fi',
        "systemctl": 'echo "systemctl $*" >> LOG; [ "$1" != is-active ] || exit 0',
        "mountpoint": "exit 0",
        "sync": 'echo sync >> LOG',
        "umount": 'echo "umount $*" >> LOG; [ "$1" != BUSY ]',
        "fuser": "echo 'busy: postgres' >&2",
    }
    for name, body in fakes.items():
        (bin_dir / name).write_text(f"#!/bin/sh\n{body.replace('LOG', str(log))}\n")
        (bin_dir / name).chmod(0o755)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin"}
    ok = subprocess.run(["sh", "-c", release_volumes_script(["/mnt/data", "/mnt/files"])], env=env,
                        capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert log.read_text().splitlines() == [
        "systemctl is-active --quiet docker", "docker stop -t 120 c1 c2", "sync", "umount /mnt/data", "umount /mnt/files"]
    busy = subprocess.run(["sh", "-c", release_volumes_script(["BUSY", "/mnt/files"])], env=env,
                          capture_output=True, text=True)
    assert busy.returncode == 1 and "BUSY is still in use" in busy.stderr and "busy: postgres" in busy.stderr


def test_an_unreachable_server_does_not_block_its_replacement_but_a_failed_release_does(tmp_path):
    unreachable, _ = run_release(tmp_path, 255)
    assert unreachable.returncode == 0 and "cannot reach root@203.0.113.10" in unreachable.stderr
    failed, _ = run_release(tmp_path, 1)
    assert failed.returncode == 1 and "not detaching them" in failed.stderr


# --- the program, under mocks ---------------------------------------------------------------


@pytest.fixture(scope="module", params=["prod", "staging"])
def run(request):
    return run_program(request.param)


def the_server(run):
    (server,) = run.mocks.of_type(SERVER)
    return server


def test_the_server_shuts_down_before_it_is_deleted(run):
    assert the_server(run).inputs["shutdownBeforeDeletion"] is True


def test_the_server_is_deleted_before_its_replacement_and_ignores_ssh_key_changes(run):
    options = run.mocks.options_of(the_server(run))
    assert options["deleteBeforeReplace"] is True  # its name and primary IPs go to the replacement
    protected = run.namespace["cfg"].protect
    assert options["protect"] is protected
    assert set(options["ignoreChanges"]) == ({"sshKeys", "userData"} if protected else {"sshKeys"})


def test_a_key_change_replaces_the_keys_command_but_not_the_server():
    keys = {"sshPublicKeys": [ADMIN_A]}
    before, after = run_program("prod", keys), run_program("prod", {"sshPublicKeys": [ADMIN_A, ADMIN_B]})
    steps = plan(before, after)
    assert steps["server"] == "same"
    assert steps["server-authorized-keys"] == "replace"
    assert [n for n, s in steps.items() if s == "create"] == [f"server-admin-{_fp(ADMIN_B)}"]
    assert [n for n, s in steps.items() if s not in ("same",) and n not in (
        "server-authorized-keys", f"server-admin-{_fp(ADMIN_B)}")] == []
    # Removing a key: its Hetzner key goes, the other stays, authorized_keys is rewritten.
    steps = plan(after, run_program("prod", {"sshPublicKeys": [ADMIN_B]}))
    assert steps["server"] == "same" and steps["server-authorized-keys"] == "replace"
    assert steps[f"server-admin-{_fp(ADMIN_A)}"] == "delete" and steps[f"server-admin-{_fp(ADMIN_B)}"] == "same"
    # Without ignoreChanges the same change would replace the server: the model has teeth.
    assert "sshKeys" in REPLACED_ON[SERVER]


def _fp(key: str) -> str:
    from numbas_infra.hetzner import key_fingerprint

    return key_fingerprint(key)


def test_the_keys_command_writes_the_admin_and_deploy_keys_over_the_pinned_connection(run):
    m = run.mocks
    keys = m.named("server-authorized-keys")
    create = keys.inputs["create"]
    for key in run.namespace["cfg"].ssh_public_keys:
        assert key in create
    assert "ssh-ed25519 AAAAserver-deploy-key" in create  # the deploy key stays
    assert "cloud-init status --wait" in create and 'mv -f "$tmp" "$f"' in create and "/root/.ssh/authorized_keys" in create
    connection = plain(keys.inputs["connection"])
    assert connection["host"] == "203.0.113.10" and connection["user"] == "root"
    assert connection["hostKey"] == "ssh-ed25519 AAAAserver-host-key"
    assert connection["privateKey"] == "-----PRIVATE server-deploy-key-----"
    server_urn = m.urn_of(the_server(run))
    assert server_urn in m.options_of(keys)["propertyDependencies"]["triggers"]  # runs again on a new server
    assert keys.inputs["addPreviousOutputInEnv"] is False
    server = run.namespace["server"]
    assert server.connection is not None and server.server_id is server.server.id


def test_a_comment_edit_does_not_replace_a_hetzner_ssh_key():
    before = run_program("prod", {"sshPublicKeys": [ADMIN_A]})
    after = run_program("prod", {"sshPublicKeys": [ADMIN_A.replace("alice@example.ac.uk", "alice (new laptop)")]})
    assert plan(before, after)[f"server-admin-{_fp(ADMIN_A)}"] == "same"


def test_keys_named_by_position_before_are_taken_over_by_alias(run):
    m = run.mocks
    [admin] = [r for r in m.of_type("hcloud:index/sshKey:SshKey") if r.name.startswith("server-admin-")]
    assert m.options_of(admin)["aliases"] == ["server-admin-0"]


def test_what_depends_on_the_server_is_replaced_with_it_in_order(run):
    # The engine's delete-before-replace: every resource with an input that comes from the server
    # and forces a replacement is deleted first, newest first (pulumi/pkg/resource/deploy/
    # step_generator.go, calculateDependentReplacements).
    m = run.mocks
    server_urn = m.urn_of(the_server(run))
    replaced = {r.name for r in m.resources
                if any(server_urn in m.options_of(r)["propertyDependencies"].get(k, [])
                       for k in REPLACED_ON.get(r.type, ()))}
    assert {"server-data-attachment", "server-files-attachment", "server-release-volumes",
            "server-authorized-keys"} <= replaced
    release = m.named("server-release-volumes")
    attachments = {m.urn_of(m.named(f"server-{role}-attachment")) for role in ("data", "files")}
    assert attachments <= set(m.options_of(release)["dependencies"])  # so it is deleted before them
    assert "umount" in release.inputs["delete"] and "docker stop -t 120" in release.inputs["delete"]
    assert was_secret_env(release)


def was_secret_env(release) -> bool:
    from tests.infra.program import was_secret

    env = release.inputs["environment"]
    return was_secret(env) or was_secret(env.get("DEPLOY_KEY"))
