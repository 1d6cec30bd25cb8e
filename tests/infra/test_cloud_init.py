"""The server's user-data is valid cloud-config (checked by `cloud-init schema`) and does what
the deploy relies on: Docker with log rotation, volumes mounted by id, key-only SSH with the
pinned host key, unattended upgrades."""

import json
import shutil
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
