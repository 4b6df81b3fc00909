"""marketing pages (placeholder)."""

from flask import Blueprint

bp = Blueprint("marketing", __name__)
