"""The console: accounts, keys, members, usage, billing (flask-login, CSRF on every form; bound in ``website.blueprints``)."""
