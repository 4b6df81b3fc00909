"""Connect an app: OAuth 2.0 authorization code with PKCE, so an app gets a ByteSpike sub-key with limits.

Bound to the app in ``website.blueprints``.
"""
