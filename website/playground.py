"""playground pages (placeholder)."""

from flask import Blueprint

bp = Blueprint("playground", __name__)
