"""docs pages (placeholder)."""

from flask import Blueprint

bp = Blueprint("docs", __name__)
