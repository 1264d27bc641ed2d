"""Glue for Salt's loader: where our loader directories are, and error reporting for them.

``get_loader_dirs`` is the ``salt.loader`` entry point (setup.cfg): it maps each
Salt loader kind to our ``_<kind>`` directory, so a master with the package
installed loads the suite without copying files.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Callable, MutableMapping

from salt_ext.errors import ServerFlowError

# Salt loader kind -> our directory name.
LOADER_DIRS = {
    "modules": "_modules",
    "engines": "_engines",
    "runners": "_runners",
    "returners": "_returners",
    "states": "_states",
    "auth": "_auth",
    "netapi": "_netapi",
}


def _roots() -> list[str]:
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    # A source checkout or editable install keeps the loader dirs beside salt_ext;
    # a wheel install puts them under <prefix>/share/serverflow (setup.cfg data_files).
    return [here, os.path.join(sys.prefix, "share", "serverflow")]


def get_loader_dirs() -> dict[str, list[str]]:
    """``{loader kind: [directory]}`` for every kind whose directory exists."""
    found: dict[str, list[str]] = {}
    for kind, name in LOADER_DIRS.items():
        for root in _roots():
            path = os.path.join(root, name)
            if os.path.isdir(path):
                found[kind] = [path]
                break
    return found


def report(context: MutableMapping[str, Any], fn: Callable[..., Any], *args: Any,
           **kwargs: Any) -> Any:
    """Call ``fn``; a ServerFlowError becomes ``{"error": {...}, "retcode": 1}``.

    ``salt-run`` exits with a ``retcode`` found in the returned dict; ``__context__``
    carries it to the job's ``success`` flag (salt-api, job cache).
    """
    try:
        return fn(*args, **kwargs)
    except ServerFlowError as exc:
        context["retcode"] = 1
        return {"error": exc.as_dict(), "retcode": 1}


def clean_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Drop Salt's ``__pub_*`` bookkeeping arguments."""
    return {k: v for k, v in kwargs.items() if not k.startswith("__")}
