"""The API gateway: /v1/*, /v1beta/*, /api/v1/*, /api/pricing and /api/status (``gateway.blueprints.register``)."""
