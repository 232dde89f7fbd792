"""The `smpphub` command (placeholder until the dispatcher lands)."""


def main(argv=None) -> int:
    print("smpphub")
    return 0
