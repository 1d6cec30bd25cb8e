"""The Docker provider's SSH options against a real SSH server (asyncssh on loopback) and the
system's OpenSSH client, as `docker -H ssh://...` runs it: the files written from the state at
every run are enough, the pinned host key is checked under the alias in the provider's URL, and a
server with another host key is refused."""

from __future__ import annotations

import asyncio
import subprocess
import threading

import asyncssh
import pytest

from numbas_infra.app_stack import docker_ssh_opts, write_ssh_files
from tests.support.net import free_port


class SshServer:
    """Accepts the deploy key only; every command prints `ran: <command>`."""

    def __init__(self, host_key: asyncssh.SSHKey, client_key: asyncssh.SSHKey):
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()

        async def handle(process):
            process.stdout.write(f"ran: {process.command}\n")
            process.exit(0)

        async def start():
            self.server = await asyncssh.create_server(
                asyncssh.SSHServer, "127.0.0.1", self.port, server_host_keys=[host_key],
                authorized_client_keys=asyncssh.import_authorized_keys(client_key.export_public_key().decode()),
                process_factory=handle)
            ready.set()

        self.thread = threading.Thread(target=lambda: (self.loop.run_until_complete(start()), self.loop.run_forever()),
                                       daemon=True)
        self.thread.start()
        assert ready.wait(15)

    def close(self):
        self.loop.call_soon_threadsafe(self.server.close)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def ssh(opts: list[str], port: int, alias: str) -> subprocess.CompletedProcess:
    # What docker's ssh connection helper runs: ssh <opts> -l root -- <host of ssh://root@host> docker ...
    return subprocess.run(["ssh", *opts, "-p", str(port), "-o", "BatchMode=yes", "-F", "/dev/null",
                           "-l", "root", "--", alias, "docker", "system", "dial-stdio"],
                          capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)


@pytest.fixture
def keys():
    return asyncssh.generate_private_key("ssh-ed25519"), asyncssh.generate_private_key("ssh-ed25519")


ALIAS = "numbas-lti-prod-server-5151"


def pinned(tmp_path, keys) -> str:
    """The files the program writes from the state: the deploy key and the pinned host key."""
    host_key, deploy_key = keys
    return write_ssh_files(str(tmp_path / "numbas-lti-prod"), alias_pattern="numbas-lti-prod-server-*",
                           deploy_key=deploy_key.export_private_key("openssh").decode(),
                           host_key=host_key.export_public_key("openssh").decode())


def test_the_deploy_reaches_the_server_by_alias_with_the_pinned_key(tmp_path, keys):
    host_key, deploy_key = keys
    server = SshServer(host_key, deploy_key)
    try:
        directory = pinned(tmp_path, keys)
        ran = ssh(docker_ssh_opts(directory, address="127.0.0.1", alias=ALIAS), server.port, ALIAS)
        assert ran.returncode == 0, ran.stderr
        assert ran.stdout.strip() == "ran: docker system dial-stdio"
    finally:
        server.close()


def test_a_server_with_another_host_key_is_refused(tmp_path, keys):
    host_key, deploy_key = keys
    impostor = SshServer(asyncssh.generate_private_key("ssh-ed25519"), deploy_key)
    try:
        directory = pinned(tmp_path, keys)
        ran = ssh(docker_ssh_opts(directory, address="127.0.0.1", alias=ALIAS), impostor.port, ALIAS)
        assert ran.returncode == 255, ran.stderr
        assert "Host key verification failed" in ran.stderr or "IDENTIFICATION HAS CHANGED" in ran.stderr, ran.stderr
    finally:
        impostor.close()


def test_without_the_alias_the_pinned_key_is_not_found(tmp_path, keys):
    """Why HostKeyAlias is there: ssh looks keys up under the address it connects to otherwise."""
    host_key, deploy_key = keys
    server = SshServer(host_key, deploy_key)
    try:
        directory = pinned(tmp_path, keys)
        opts = docker_ssh_opts(directory, address="127.0.0.1", alias=ALIAS)
        at = opts.index(f"HostKeyAlias={ALIAS}")
        del opts[at - 1:at + 1]
        ran = ssh(opts, server.port, ALIAS)
        assert ran.returncode == 255 and "Host key verification failed" in ran.stderr, ran.stderr
    finally:
        server.close()
