"""Language in the URL and the Babel locale selector (placeholder)."""

from flask import Flask


def init_app(app: Flask) -> None:
    pass
