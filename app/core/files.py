"""Files and folders the app writes for nginx to serve (exams under MEDIA_ROOT, reports under
PRIVATE_ROOT), with the permission bits of the settings whatever the process's umask.

In production nginx's workers are another user than the app and read these files through their
group: cloud-init gives media/ and private/ that group with the setgid bit, so what the app
creates below inherits the group (and folders the setgid bit) from their parent, and the app
needs no membership of the group (infra/numbas_infra/spec.py). The app sets only the permission
bits. It never changes a folder whose bits are already right: on Linux a chmod by a process
outside the folder's group clears its setgid bit, and what is created in it later would lose
the group.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

PERMISSION_BITS = 0o777


def mkdir(path: Path, mode: int, *, parents: bool = False, exist_ok: bool = False) -> Path:
    """Path.mkdir with `mode`'s permission bits on the folder (and on parents it creates), not
    `mode` less the umask. An existing folder (exist_ok) gets them too if it lacks them."""
    bits = mode & PERMISSION_BITS
    path = Path(path)
    if parents and not path.parent.is_dir():
        mkdir(path.parent, mode, parents=True, exist_ok=True)
    try:
        os.mkdir(path, bits)
    except FileExistsError:
        if not exist_ok or not path.is_dir():
            raise
    _set_bits(path, bits)
    return path


def _set_bits(path: Path, bits: int) -> None:
    current = os.stat(path).st_mode
    if stat.S_IMODE(current) & PERMISSION_BITS != bits:
        os.chmod(path, bits | (current & stat.S_ISGID))  # kept by root; see the module's docstring


def create(path: Path, mode: int, *, exclusive: bool = True) -> int:
    """Open a file for writing (a new one if `exclusive`, else created or emptied) with exactly
    `mode`'s permission bits; returns the descriptor."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if exclusive else os.O_TRUNC) | os.O_NOFOLLOW
    descriptor = os.open(path, flags, mode & PERMISSION_BITS)
    try:
        os.fchmod(descriptor, mode & PERMISSION_BITS)
    except BaseException:
        os.close(descriptor)
        raise
    return descriptor
