"""A chained exception with local variables and a breadcrumb, sent by the real Sentry SDK.

Usage: chained.py DSN
Prints the event id the SDK gave the event.
"""
import sys

import sentry_sdk


def load_config(settings):
    key = "database_url"
    return settings[key]


def start(settings):
    try:
        return load_config(settings)
    except KeyError as e:
        raise RuntimeError("could not start: configuration incomplete") from e


def main():
    sentry_sdk.init(
        dsn=sys.argv[1],
        environment="production",
        release="svc@2.1.0",
        include_local_variables=True,
        default_integrations=True,
    )
    sentry_sdk.set_user({"id": "42", "email": "ada@example.com"})
    sentry_sdk.set_tag("region", "eu-west")
    sentry_sdk.add_breadcrumb(category="boot", message="reading settings", level="info")
    try:
        start({"debug": True})
    except RuntimeError as e:
        event_id = sentry_sdk.capture_exception(e)
    sentry_sdk.flush(timeout=10)
    print(event_id)


if __name__ == "__main__":
    main()
