"""A WSGI app that fails, reported by the real Sentry SDK through its WSGI middleware, so the
event carries what a web framework's integration sends: the request (method, URL, query,
headers), a chained exception with local variables and source context, a breadcrumb, the
user, a tag and the runtime contexts.

Usage: webapp.py DSN N
Serves N failing requests (GET /checkout?cart=<i>) and prints each event's id, one a line.
"""
import io
import os
import sys

import sentry_sdk
from sentry_sdk.integrations.wsgi import SentryWsgiMiddleware


def price_of(cart, sku):
    prices = {"apple": 3}
    return prices[sku] * cart["count"]


def checkout(cart):
    try:
        return price_of(cart, "pear")
    except KeyError as e:
        raise RuntimeError("checkout failed: unknown product") from e


def app(environ, start_response):
    sentry_sdk.set_user({"id": "42", "email": "ada@example.com"})
    sentry_sdk.set_tag("region", "eu-west")
    sentry_sdk.add_breadcrumb(category="cart", message="cart loaded", level="info")
    checkout({"count": 2})
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]


def request(i):
    return {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/checkout",
        "QUERY_STRING": f"cart={i}",
        "SERVER_NAME": "shop.example",
        "SERVER_PORT": "443",
        "HTTP_HOST": "shop.example",
        "HTTP_USER_AGENT": "Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0",
        "wsgi.url_scheme": "https",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": sys.stderr,
    }


def main():
    sent = []

    def before_send(event, hint):
        sent.append(event["event_id"])
        return event

    sentry_sdk.init(
        before_send=before_send,
        dsn=sys.argv[1],
        environment="production",
        release="shop@1.4.2",
        include_local_variables=True,
        send_default_pii=True,
        # This file's frames are the application's own (in-app), the SDK's are not.
        project_root=os.path.dirname(os.path.abspath(__file__)),
    )
    wrapped = SentryWsgiMiddleware(app)
    for i in range(int(sys.argv[2])):
        try:
            wrapped(request(i), lambda *a: None)
        except RuntimeError:
            pass
    sentry_sdk.flush(timeout=10)
    for event_id in sent:
        print(event_id)


if __name__ == "__main__":
    main()
