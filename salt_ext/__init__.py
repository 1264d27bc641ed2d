"""ServerFlow core library: plain Python, importable without a Salt master.

The Salt loader modules under ``_engines/``, ``_runners/``, ``_returners/`` ...
parse their arguments and ``__opts__`` and call into this package.
"""

__version__ = "0.1.0"
