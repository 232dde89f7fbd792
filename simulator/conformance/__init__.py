"""``smpphub check-esme``: the simulator plays a fixed battery against the user's ESME.

The ESME binds to the checker as it would to a carrier and keeps submitting; the
checker answers it the ways carriers do (holds answers, throttles, sends receipts
and MO, sends enquire_link, an unknown PDU, an unbind, drops the connection) and
reports pass or fail per item with what it saw. See simulator/README.md.

- :mod:`.probe`: the SMSC side, a Protocol around smppcore's sans-IO Session that
  writes down when each PDU came and went;
- :mod:`.battery`: the checks, each with the ESME bug it catches; :mod:`.policies`: how
  they answer submits while watching (hold, throttle); :mod:`.verdicts`: judging the
  ESME's answers, in words;
- :mod:`.runner`: one run, bounded; :mod:`.report`: its result as text or JSON;
- :mod:`.cli`: the ``smpphub check-esme`` command.
"""

from .battery import CHECKS, Limits
from .report import CheckResult, Report, Status
from .runner import EsmeChecker

__all__ = ["CHECKS", "Limits", "EsmeChecker", "Report", "CheckResult", "Status"]
