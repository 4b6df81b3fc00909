"""Gateway routes (placeholder until the pipeline lands)."""

from flask import Blueprint

bp = Blueprint("gateway", __name__)
BLUEPRINTS = [bp]
