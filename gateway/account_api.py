"""Account, key and pricing API: /api/v1/me/*, /api/v1/keys, /api/pricing (placeholder)."""

from flask import Blueprint

bp = Blueprint("account_api", __name__)
