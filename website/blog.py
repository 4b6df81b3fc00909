"""blog pages (placeholder)."""

from flask import Blueprint

bp = Blueprint("blog", __name__)
