"""The SMSC simulator (installed as ``smpphub.simulator``): a scriptable SMSC for ESME
developers and benchmarks. :class:`~smpphub.simulator.engine.Simulator` is the SMSC
(binds, submits, receipts, MO, faults), :mod:`~smpphub.simulator.config` its TOML
configuration, :mod:`~smpphub.simulator.app` runs it (plain and TLS listeners, outbind, a pcap capture)
with an optional HTTP port whose control operations live in
:mod:`~smpphub.simulator.control`, and
:mod:`~smpphub.simulator.pytest_plugin` offers it as pytest fixtures."""
