"""Files the package ships (the wheel carries them), found through ``importlib.resources``.

    bundled.path("terraform_templates")   # the Terraform snapshot template
    bundled.path("gitops")                # the demo's GitOps repository (examples/gitops)
    bundled.path("prometheus-rules.yaml") # the recording rules live scans read (the chart links to it)

They live in ``finops_operator/data/``. Two of them are kept at the top of the
repository, where people read them (``terraform_templates/``, ``examples/gitops``);
``data/`` holds symlinks to those directories, so a build copies the one source
into the wheel and nothing can drift (tests/integration/test_wheel.py checks it).
"""
from __future__ import annotations

from importlib import resources
from pathlib import Path

from .errors import ConfigError

PACKAGE = "finops_operator"


def path(*parts: str) -> Path:
    """``finops_operator/data/<parts>`` as a file-system path (a wheel is installed unpacked)."""
    where = resources.files(PACKAGE).joinpath("data", *parts)
    if not isinstance(where, Path) or not where.exists():
        raise ConfigError(f"bundled data {'/'.join(parts)} is missing from the installed package ({where}); "
                          "reinstall finops-operator from a wheel or a source checkout",
                          source=f"{PACKAGE}/data")
    return where
