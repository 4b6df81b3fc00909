"""pricing pages (placeholder)."""

from flask import Blueprint

bp = Blueprint("pricing", __name__)
