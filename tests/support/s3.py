"""An S3 endpoint on loopback for the backup tests: moto's server (plain HTTP on a free port)
behind nginx with TLS on another, as https://localhost:PORT with a throwaway certificate.

pgBackRest speaks S3 over TLS only, checks the certificate's DNS names (not IP addresses, hence
`localhost`) and reuses connections, which moto's development server closes without a TLS
close_notify (pgBackRest then fails with "unexpected eof"); nginx terminates TLS properly and
keeps connections alive. restic and boto3 use the same endpoint.

    with LocalS3() as s3:
        settings = s3.backup_settings(prefix="test")   # a BackupSettings for infra/numbas_infra/backup.py
        s3.keys("test/pgbackrest/")                    # what is in the bucket
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from numbas_infra.backup import BackupSettings
from tests.support.net import free_port, self_signed_certificate

HOST = "localhost"  # pgBackRest verifies DNS names only
REGION = "eu-central-1"
BUCKET = "numbas-lti-backups"
KEY_ID, KEY_SECRET = "local-test-key-id", "local-test-key-secret"
TIMEOUT = 30


def _certificate(directory: Path) -> tuple[Path, Path]:
    # pgBackRest runs as postgres and reads the certificate (0644); it checks DNS names only.
    return self_signed_certificate(directory / "s3-cert.pem", directory / "s3-key.pem", names=[HOST], ca=True)


def _wait_port(port: int, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {port}; see {log}")


NGINX_CONF = """\
{user}worker_processes 1;
pid {root}/nginx.pid;
error_log {root}/nginx-error.log warn;
events {{ worker_connections 256; }}
http {{
  access_log {root}/nginx-access.log;
  client_body_temp_path {root}/temp/body;
  proxy_temp_path {root}/temp/proxy;
  fastcgi_temp_path {root}/temp/fastcgi;
  uwsgi_temp_path {root}/temp/uwsgi;
  scgi_temp_path {root}/temp/scgi;
  server {{
    listen 127.0.0.1:{port} ssl;
    server_name {host};
    ssl_certificate {cert};
    ssl_certificate_key {key};
    client_max_body_size 0;
    proxy_request_buffering off;
    proxy_buffering off;
    location / {{
      proxy_pass http://127.0.0.1:{backend};
      proxy_http_version 1.1;
      proxy_set_header Host $http_host;  # part of the request's signature
      proxy_set_header Connection "";
      proxy_read_timeout 300s;
    }}
  }}
}}
"""


class LocalS3:
    def __init__(self, *, keep_dir: bool = False):
        # Under /tmp itself, not pytest's private directories: pgBackRest runs as postgres and
        # reads the CA file.
        self.root = Path(tempfile.mkdtemp(prefix="numbas-lti-s3-"))
        os.chmod(self.root, 0o755)
        self.keep_dir = keep_dir
        self.processes: list[subprocess.Popen] = []

    # --- lifecycle ----------------------------------------------------------------------------
    def start(self) -> "LocalS3":
        self.cert, self.key = _certificate(self.root)
        self.backend_port, self.port = free_port(), free_port()
        try:
            log = self.root / "moto.log"
            with open(log, "ab") as out:
                moto = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.backend_port)],
                                        stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                        env={**os.environ, "MOTO_ALLOW_NONEXISTENT_REGION": "true"})
            self.processes.append(moto)
            _wait_port(self.backend_port, moto, log)
            (self.root / "temp").mkdir(exist_ok=True)
            user = f"user {pwd.getpwuid(os.getuid()).pw_name};\n" if os.getuid() == 0 else ""
            conf = self.root / "nginx.conf"
            conf.write_text(NGINX_CONF.format(user=user, root=self.root, port=self.port, host=HOST, cert=self.cert,
                                              key=self.key, backend=self.backend_port))
            nginx = shutil.which("nginx") or "/usr/sbin/nginx"
            log = self.root / "nginx.log"
            with open(log, "ab") as out:
                proxy = subprocess.Popen([nginx, "-p", str(self.root), "-c", str(conf), "-e", "stderr", "-g", "daemon off;"],
                                         stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
            self.processes.append(proxy)
            _wait_port(self.port, proxy, log)
            self.client().create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait(timeout=15)
        self.processes.clear()
        if not self.keep_dir:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> "LocalS3":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- for the code under test ---------------------------------------------------------------
    @property
    def endpoint_url(self) -> str:
        return f"https://{HOST}:{self.port}"

    def backup_settings(self, prefix: str = "numbas-lti", **overrides) -> BackupSettings:
        return BackupSettings(endpoint=HOST, region=REGION, bucket=BUCKET, prefix=prefix, port=self.port,
                              uri_style="path", ca_file=str(self.cert), **overrides)

    def secrets(self, *, cipher_pass: str = "local-test-cipher-pass", restic_password: str = "local-test-restic-password"):
        from numbas_infra import backup

        return backup.secret_environment(s3_key_id=KEY_ID, s3_key_secret=KEY_SECRET, cipher_pass=cipher_pass,
                                         restic_password=restic_password)

    # --- looking into the bucket ------------------------------------------------------------------
    def client(self):
        import boto3
        from botocore.config import Config

        return boto3.client("s3", endpoint_url=self.endpoint_url, region_name=REGION, aws_access_key_id=KEY_ID,
                            aws_secret_access_key=KEY_SECRET, verify=str(self.cert),
                            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}))

    def keys(self, prefix: str = "") -> dict[str, int]:
        """key -> size of every object under prefix (at most 20,000)."""
        found: dict[str, int] = {}
        paginator = self.client().get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=BUCKET, Prefix=prefix, PaginationConfig={"MaxItems": 20000}):
            for item in page.get("Contents", []):
                found[item["Key"]] = item["Size"]
        return found

    def delete(self, key: str) -> None:
        self.client().delete_object(Bucket=BUCKET, Key=key)
