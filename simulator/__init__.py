"""The SMSC simulator (installed as ``smpphub.simulator``): a scriptable SMSC for ESME
developers and benchmarks. :class:`~smpphub.simulator.engine.Simulator` is the SMSC
(binds, submits, receipts, MO, faults), :mod:`~smpphub.simulator.config` its TOML
configuration, :mod:`~smpphub.simulator.app` runs it with an optional HTTP API, and
:mod:`~smpphub.simulator.pytest_plugin` offers it as pytest fixtures."""
