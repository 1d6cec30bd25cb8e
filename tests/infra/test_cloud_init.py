"""The server's user-data is valid cloud-config (checked by `cloud-init schema`) and does what
the deploy relies on: Docker with log rotation, volumes mounted by id, key-only SSH with the
pinned host key, unattended upgrades."""

import json
import os
import shutil
import stat
import subprocess

import pytest
import yaml

from numbas_infra import cloud_init, spec

HOST_KEY_PRIVATE = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n"
HOST_KEY_PUBLIC = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHostKeyExample"


def render():
    return cloud_init.user_data(host_key_private=HOST_KEY_PRIVATE, host_key_public=HOST_KEY_PUBLIC,
                                volumes=cloud_init.volumes_for("100001", "100002"))


def cloud_init_schema(path):
    binary = shutil.which("cloud-init")
    if binary is None:
        pytest.fail("cloud-init is not installed (scripts/test installs it)")
    return subprocess.run([binary, "schema", "--config-file", str(path)], capture_output=True, text=True, timeout=60)


def test_user_data_passes_cloud_init_schema(tmp_path):
    path = tmp_path / "user-data"
    path.write_text(render())
    result = cloud_init_schema(path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Valid" in result.stdout + result.stderr


def test_the_schema_check_has_teeth(tmp_path):
    path = tmp_path / "user-data"
    path.write_text(render().replace("ssh_pwauth: false", "ssh_pwauth: [not, a, bool]"))
    assert cloud_init_schema(path).returncode != 0


def test_user_data_does_what_the_deploy_relies_on():
    text = render()
    assert text.startswith("#cloud-config\n")
    document = yaml.safe_load(text)
    assert "docker.io" in document["packages"] and "unattended-upgrades" in document["packages"]
    files = {f["path"]: f["content"] for f in document["write_files"]}
    daemon = json.loads(files["/etc/docker/daemon.json"])
    assert daemon["log-opts"] == {"max-size": "10m", "max-file": "5"}
    assert "PasswordAuthentication no" in files["/etc/ssh/sshd_config.d/10-numbas-lti.conf"]
    assert 'Unattended-Upgrade "1"' in files["/etc/apt/apt.conf.d/20auto-upgrades"]
    assert document["ssh_pwauth"] is False
    assert document["ssh_keys"] == {"ed25519_private": HOST_KEY_PRIVATE, "ed25519_public": HOST_KEY_PUBLIC}
    scripts = "\n".join(c[2] for c in document["runcmd"] if c[:2] == ["sh", "-c"])
    for volume_id, mount in (("100001", spec.DATA_MOUNT), ("100002", spec.FILES_MOUNT)):
        assert f"/dev/disk/by-id/scsi-0HC_Volume_{volume_id} {mount} ext4" in scripts
    assert f"{spec.DATA_MOUNT}/postgres" in scripts and f"{spec.FILES_MOUNT}/private" in scripts


def files_volume_script() -> str:
    document = yaml.safe_load(render())
    [script] = [c[2] for c in document["runcmd"] if c[:2] == ["sh", "-c"] and f"{spec.FILES_MOUNT}/private" in c[2]]
    return script


def below_the_mount_point(script: str, scratch) -> str:
    """The lines of the files volume's script that act below its mount point (the rest needs a
    device), pointed at a scratch folder."""
    lines = [line for line in script.splitlines() if f"{spec.FILES_MOUNT}/" in line]
    return "\n".join(["set -eu", *(line.replace(f"{spec.FILES_MOUNT}/", f"{scratch}/") for line in lines)])


def test_the_files_volume_is_set_up_after_it_is_mounted():
    lines = files_volume_script().splitlines()
    mounted = next(i for i, line in enumerate(lines) if "mount -t ext4" in line)
    assert all(i > mounted for i, line in enumerate(lines) if f"{spec.FILES_MOUNT}/" in line)
    assert any(f"{spec.FILES_MOUNT}/private" in line for line in lines)


def snapshot(root):
    return {str(p.relative_to(root)): (p.stat().st_uid, p.stat().st_gid, oct(p.stat().st_mode))
            for p in [root, *sorted(root.rglob("*"))]}


def test_the_files_volume_gives_nginx_group_read_and_others_nothing_even_on_an_old_volume(tmp_path):
    """Run the lines cloud-init runs on a volume as an older deploy left it (private files only
    their owner could read: nginx, another user, answered 403 to every download); run them again."""
    if os.getuid() != 0:
        pytest.skip("chown to the app's uid needs root")
    files = tmp_path / "files"
    old = {"private/reports/old.csv": 0o600, "private/reports/.x.part": 0o600, "media/exams/abc/index.html": 0o644,
           "media/exams/abc/js/run.js": 0o644}
    for name, mode in old.items():
        (files / name).parent.mkdir(parents=True, exist_ok=True)
        (files / name).write_text("x")
        os.chmod(files / name, mode)
    os.chmod(files / "private/reports", 0o700)
    outside = tmp_path / "outside"
    outside.write_text("not the volume's")
    os.chmod(outside, 0o600)
    (files / "private/reports/link").symlink_to(outside)  # never followed
    for path in [files, *files.rglob("*")]:
        os.lchown(path, cloud_init.APP_UID, cloud_init.APP_UID)

    script = below_the_mount_point(files_volume_script(), files)
    result = subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr

    # nginx's group (101 in the official image); private: the group reads, others nothing.
    for top, dir_mode, file_mode in (("private", 0o2750, 0o640), ("media", 0o2755, 0o644)):
        for path in [files / top, *(files / top).rglob("*")]:
            info = path.lstat()
            assert (info.st_uid, info.st_gid) == (cloud_init.APP_UID, 101), path
            if path.is_symlink():
                continue
            assert stat.S_IMODE(info.st_mode) == (dir_mode if path.is_dir() else file_mode), (path, oct(info.st_mode))
    assert (spec.FILES_GID, spec.PRIVATE_DIR_MODE, spec.PRIVATE_FILE_MODE) == (101, 0o2750, 0o640)
    assert (spec.MEDIA_DIR_MODE, spec.MEDIA_FILE_MODE) == (0o2755, 0o644)
    assert (outside.stat().st_gid, stat.S_IMODE(outside.stat().st_mode)) == (os.getgid(), 0o600)

    # Idempotent: a second boot with the same volume changes nothing and succeeds.
    before = snapshot(files)
    again = subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=60)
    assert again.returncode == 0, again.stderr
    assert snapshot(files) == before

    # A file or folder created later below private/ is in nginx's group without anyone's help.
    new = files / "private/reports/new"
    new.mkdir()
    assert new.stat().st_gid == 101 and new.stat().st_mode & stat.S_ISGID


def test_the_data_volume_keeps_its_owners_and_modes():
    document = yaml.safe_load(render())
    [script] = [c[2] for c in document["runcmd"] if c[:2] == ["sh", "-c"] and f"{spec.DATA_MOUNT}/postgres" in c[2]]
    assert f"chown {cloud_init.POSTGRES_UID}:{cloud_init.POSTGRES_UID} {spec.DATA_MOUNT}/postgres" in script
    assert "chmod" not in script and "chgrp" not in script


def test_the_app_is_told_the_modes_cloud_init_sets():
    env = spec.app_environment(spec.AppSettings(domain="numbas.example.ac.uk", exam_domain="exams.numbas.example.ac.uk"))
    assert {k: int(env[k], 8) for k in ("PRIVATE_DIR_MODE", "PRIVATE_FILE_MODE", "MEDIA_DIR_MODE", "MEDIA_FILE_MODE")} == {
        "PRIVATE_DIR_MODE": spec.PRIVATE_DIR_MODE, "PRIVATE_FILE_MODE": spec.PRIVATE_FILE_MODE,
        "MEDIA_DIR_MODE": spec.MEDIA_DIR_MODE, "MEDIA_FILE_MODE": spec.MEDIA_FILE_MODE}
