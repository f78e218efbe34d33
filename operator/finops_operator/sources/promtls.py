"""PEM text from Secrets as files, for the HTTP client (requests takes paths for CA bundles and client certs).

Each distinct PEM is written once, named by its SHA-256, into a private
directory (mode 0700, files 0600) of the system's temporary directory: a
policy run that reads the same Secret again reuses the file, so a long-lived
operator holds one file per distinct certificate, not one per run.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from ..errors import ConfigError

_DIR_NAME = f"finops-operator-tls-{os.getuid()}"


def pem_file(text: str, *, field: str = "tls") -> str:
    """The path of a private file holding ``text`` (PEM); refused when it holds no PEM block."""
    if "-----BEGIN " not in text:
        raise ConfigError("the Secret value is not PEM (no '-----BEGIN' line); store the certificate or key in "
                          "PEM form", field=field)
    folder = Path(tempfile.gettempdir()) / _DIR_NAME
    folder.mkdir(mode=0o700, exist_ok=True)
    if folder.stat().st_uid != os.getuid() or folder.is_symlink():
        raise ConfigError(f"{folder} is not this process's own directory; refusing to write keys there",
                          field=field)
    path = folder / (hashlib.sha256(text.encode()).hexdigest() + ".pem")
    if not path.exists():
        fd, tmp = tempfile.mkstemp(dir=folder)
        with os.fdopen(fd, "w") as out:
            out.write(text if text.endswith("\n") else text + "\n")
        os.replace(tmp, path)
    return str(path)
