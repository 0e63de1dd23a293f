"""An application using the real Sentry SDK, pointed at Mesher by its DSN only.

Usage: app.py DSN
"""
import sys

import sentry_sdk


def divide(a, b):
    return a / b


def main():
    sentry_sdk.init(
        dsn=sys.argv[1],
        environment="staging",
        release="shop@1.0.0",
        traces_sample_rate=1.0,
    )
    # Two captures from one site: one issue with two events.
    for _ in range(2):
        try:
            divide(1, 0)
        except ZeroDivisionError as e:
            sentry_sdk.capture_exception(e)
    sentry_sdk.capture_message("disk almost full", level="warning")
    # A transaction envelope, which Mesher accepts and ignores.
    with sentry_sdk.start_transaction(name="checkout"):
        pass
    sentry_sdk.flush(timeout=10)


if __name__ == "__main__":
    main()
