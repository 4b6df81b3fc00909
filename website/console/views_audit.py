"""The org's audit log in the console (owners and admins): who did what, from where, newest first."""

from __future__ import annotations

from flask import render_template, request
from flask_login import login_required

from core import audit

from .auth import current_membership
from .blueprint import bp

PAGE = 50


@bp.get("/audit")
@login_required
def audit_log():  # type: ignore[no-untyped-def]
    me = current_membership()
    before = request.args.get("before", type=int)
    rows = audit.page(me.org_id, limit=PAGE + 1, before=before if before and before > 0 else None)
    more = len(rows) > PAGE
    rows = rows[:PAGE]
    return render_template("console/audit.html", rows=rows, next_before=rows[-1]["id"] if more and rows else None,
                           active="audit")
