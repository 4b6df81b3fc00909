def test_app_health_endpoints(client):
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200


def test_sync_check_is_remembered_per_plain_function():
    """Views and hooks are checked once; a coroutine still takes Flask's own path, and nothing else is kept."""
    from app import ByteSpikeFlask

    app = ByteSpikeFlask(__name__)

    def view() -> str:
        return "ok"

    async def later() -> str:
        return "ok"

    assert app.ensure_sync(view) is view and app.ensure_sync(view) is view
    assert list(app._synced) == [view]
    try:
        wrapped = app.ensure_sync(later)
    except RuntimeError:  # Flask needs its async extra to run a coroutine view
        wrapped = None
    assert wrapped is not later

    class Holder:
        def method(self) -> None:
            return None

    holder = Holder()
    assert app.ensure_sync(holder.method) == holder.method
    assert len(app._synced) <= 2  # a bound method (a new object each time) is not remembered
    assert holder.method not in app._synced
