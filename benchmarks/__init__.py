"""Benchmarks (installed as ``smpphub.bench``): the load generator and the comparisons with peers.

The load generator is ``smpphub bench`` (``loadgen`` with ``worker``, ``bulk``,
``messages``; ``cli``): it drives any SMPP server and measures throughput and latency.
The rest measures in one run, side by side: every server under the same load
(``compare``), the hub end to end (``hub``), the simulator's fast path
(``simulator``), the codec and the session layer against other SMPP implementations
(``codec``, ``session``; the peers' adapters in ``peers/``) and the SQLite store
(``store``). benchmarks/README.md has the commands and the results.
"""
