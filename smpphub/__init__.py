"""smpphub: SMPP 3.4 routing hub, SMSC simulator and load generator on smppcore.

The installed layout keeps generic names out of a user's environment: the hub is
``smpphub.router``, the simulator ``smpphub.simulator`` (with its pytest plugin), the
load generator ``smpphub.bench``, and ``smpphub.cli`` is the ``smpphub`` command.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("smpphub")
except PackageNotFoundError:  # running from a checkout that was never installed
    __version__ = "0+unknown"
