"""The same error from the same line with two values, through the real Sentry SDK: Mesher
groups them by the stack (one issue), as Sentry does.

Usage: checkout.py DSN
"""
import sys

import sentry_sdk


class CheckoutError(Exception):
    pass


def add_to_cart(sku):
    raise CheckoutError(f"unknown SKU '{sku}'")


def main():
    sentry_sdk.init(dsn=sys.argv[1], release="shop@2.0.0")
    for sku in ["kiwi", "mango"]:
        try:
            add_to_cart(sku)
        except CheckoutError as e:
            sentry_sdk.capture_exception(e)
    sentry_sdk.flush(timeout=10)


if __name__ == "__main__":
    main()
