"""The console's actions: each function does one action's work in one transaction, commits and audits.

The views parse the request, call one of these and render; keys go through ``core.accounts`` (the
account API makes its keys with the same functions).
"""
