"""Payments: Alipay, WeChat Pay v3 and the sandbox simulator (placeholder)."""

from flask import Flask


def init_app(app: Flask) -> None:
    pass
