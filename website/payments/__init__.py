"""Payments: Alipay, WeChat Pay v3 and the labelled sandbox simulator; top-ups, plans, webhooks.

Bound to the app in ``website.blueprints``; the operator's commands are in ``commands``.
"""
