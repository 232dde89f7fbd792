"""An ESME written the way smpplib's README shows (PyPI ``smpplib``: a thread runs
``client.listen()``, the main thread sends), for tests/test_check_esme.py.

    python tests/esmes/smpplib_esme.py --port 2775

What smpplib leaves to its user is written here as a careful user would: a window
(a semaphore of ``--window`` submits in flight), a retry of a message answered
ESME_RTHROTTLED after ``--retry-after`` seconds, and a reconnect loop when the
listening thread ends (connection lost, or an exception smpplib raises). Prints
``bound`` per bind and ``listen_ended <exception>`` when the listening thread stops.
Runs until killed, or until ``--max-binds`` binds (default unlimited) ended.
"""

from __future__ import annotations

import argparse
import collections
import sys
import threading
import time

import smpplib.client
import smpplib.consts

THROTTLED = 0x58


def say(*words: object) -> None:
    print(*words, flush=True)


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--system-id", default="smpplib")
    p.add_argument("--password", default="secret")
    p.add_argument("--window", type=int, default=10)
    p.add_argument("--rate", type=float, default=100.0)
    p.add_argument("--retry-after", type=float, default=0.3)
    p.add_argument("--max-binds", type=int, default=0)
    args = p.parse_args()

    lock = threading.Lock()
    retries: collections.deque[tuple[float, int]] = collections.deque()  # (not before, number)
    numbers = iter(range(1, 1 << 30))
    binds = 0

    while not args.max_binds or binds < args.max_binds:
        client = smpplib.client.Client(args.host, args.port, timeout=5, allow_unknown_opt_params=True)
        in_flight: dict[int, int] = {}  # sequence -> message number
        window = threading.Semaphore(args.window)

        def answered(pdu, in_flight=in_flight, window=window, **_kw) -> None:
            with lock:
                number = in_flight.pop(pdu.sequence, None)
            if number is not None:
                window.release()

        def error(pdu, in_flight=in_flight, window=window) -> None:
            if pdu.command == "submit_sm_resp":
                with lock:
                    number = in_flight.pop(pdu.sequence, None)
                if number is not None:
                    window.release()
                    if pdu.status == THROTTLED:
                        with lock:
                            retries.append((time.monotonic() + args.retry_after, number))

        client.set_message_sent_handler(answered)
        client.set_error_pdu_handler(error)
        client.set_message_received_handler(lambda pdu, **kw: None)  # None: deliver_sm_resp ESME_ROK
        try:
            client.connect()
            client.bind_transceiver(system_id=args.system_id, password=args.password)
        except Exception as exc:  # noqa: BLE001 - a test ESME: retry later
            say("bind_failed", repr(exc))
            client.disconnect()
            time.sleep(0.2)
            continue
        binds += 1
        say("bound")
        ended = threading.Event()

        def listen(client=client, ended=ended) -> None:
            try:
                client.listen()
            except Exception as exc:  # noqa: BLE001 - reported, then the main loop reconnects
                say("listen_ended", repr(exc))
            ended.set()

        threading.Thread(target=listen, daemon=True).start()
        while not ended.is_set():
            if not window.acquire(timeout=0.1):
                continue
            with lock:
                due = retries[0][1] if retries and retries[0][0] <= time.monotonic() else None
                if due is not None:
                    retries.popleft()
            number = due if due is not None else next(numbers)
            try:
                with lock:  # the answer may be read before send_message returns: its handler waits for this
                    pdu = client.send_message(
                        source_addr="SmppLib", destination_addr=f"4477008{number:05d}",
                        short_message=f"smpplib test message {number}".encode(), registered_delivery=1,
                    )
                    in_flight[pdu.sequence] = number
            except Exception as exc:  # noqa: BLE001 - the connection went: send it again later
                say("send_failed", repr(exc))
                with lock:
                    retries.appendleft((0.0, number))
                window.release()
                ended.wait(1)
                break
            time.sleep(1 / args.rate)
        with lock:
            retries.extendleft((0.0, n) for n in in_flight.values())  # lost with the connection
        try:
            client.disconnect()
        except Exception:  # noqa: BLE001 - already gone
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
