"""core/files.py: the permission bits asked for whatever the umask, and the setgid bit (how
nginx's group reaches what the app writes) never lost to a chmod by an app outside that group."""

import os
import pwd
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from core import files


@pytest.fixture
def tight_umask():
    previous = os.umask(0o077)
    yield
    os.umask(previous)


def bits(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_folders_and_files_get_the_bits_whatever_the_umask(tmp_path, tight_umask):
    folder = files.mkdir(tmp_path / "a" / "b", 0o2750, parents=True)
    assert bits(tmp_path / "a") & 0o777 == 0o750 and bits(folder) & 0o777 == 0o750
    descriptor = files.create(folder / "f", 0o640)
    os.close(descriptor)
    assert bits(folder / "f") == 0o640
    with pytest.raises(FileExistsError):
        files.create(folder / "f", 0o640)
    os.close(files.create(folder / "f", 0o644, exclusive=False))
    assert bits(folder / "f") == 0o644


def test_an_existing_folder_is_left_alone_when_right_and_mended_when_not(tmp_path):
    folder = tmp_path / "old"
    folder.mkdir()
    os.chmod(folder, 0o700)
    files.mkdir(folder, 0o750, exist_ok=True)
    assert bits(folder) == 0o750
    with pytest.raises(FileExistsError):
        files.mkdir(folder, 0o750)
    (tmp_path / "file").write_text("x")
    with pytest.raises(FileExistsError):
        files.mkdir(tmp_path / "file", 0o750, exist_ok=True)


def test_files_refuse_to_follow_a_symbolic_link(tmp_path):
    target = tmp_path / "target"
    target.write_text("keep")
    (tmp_path / "link").symlink_to(target)
    with pytest.raises(OSError):
        files.create(tmp_path / "link", 0o640, exclusive=False)
    assert target.read_text() == "keep"


PROBE = """
import os, stat, sys
from pathlib import Path
import files
top = Path(sys.argv[1])
files.mkdir(top / "reports", 0o2750, exist_ok=True)
files.mkdir(top / "reports" / "deeper", 0o2750, parents=True, exist_ok=True)
os.close(files.create(top / "reports" / "r.csv", 0o640))
for p in (top / "reports", top / "reports" / "deeper", top / "reports" / "r.csv"):
    s = p.stat()
    print(p.name, s.st_gid, oct(stat.S_IMODE(s.st_mode)))
"""


def _as_nobody(argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(["runuser", "-u", "nobody", "--", *argv], capture_output=True, text=True, timeout=60,
                          env={"PATH": os.environ["PATH"]}, **kwargs)


@pytest.fixture
def scratch():
    """A folder others may enter (pytest's own are closed to them), holding a copy of core/files.py."""
    if os.getuid() != 0:
        pytest.skip("running as another user needs root")
    python = next((p for p in ("/usr/bin/python3", shutil.which("python3"), sys.executable)
                   if p and _as_nobody([p, "-c", "pass"]).returncode == 0), None)
    if python is None:
        pytest.skip("no Python that user nobody may run")
    root = Path(tempfile.mkdtemp(prefix="numbas-lti-files-"))
    try:
        os.chmod(root, 0o755)
        (root / "lib").mkdir(mode=0o755)
        shutil.copy(files.__file__, root / "lib" / "files.py")
        os.chmod(root / "lib" / "files.py", 0o644)
        yield python, root
    finally:
        shutil.rmtree(root)


def test_an_app_outside_the_group_keeps_the_group_and_the_setgid_bit(scratch):
    """As in production: the app (nobody here) is not in the folder's group (root's here, nginx's
    there), which reaches its files only through folders that pass the group down (setgid)."""
    python, root = scratch
    nobody = pwd.getpwnam("nobody")
    top = root / "private"
    top.mkdir()
    os.chown(top, nobody.pw_uid, 0)
    os.chmod(top, 0o2750)  # as cloud-init leaves it
    result = _as_nobody([python, "-c", f"import sys; sys.path.insert(0, {str(root / 'lib')!r})\n" + PROBE, str(top)])
    assert result.returncode == 0, result.stderr
    seen = {name: (int(gid), mode) for name, gid, mode in (line.split() for line in result.stdout.splitlines())}
    assert seen == {"reports": (0, "0o2750"), "deeper": (0, "0o2750"), "r.csv": (0, "0o640")}
