"""Workers that start the sandbox at the same moment all read the same whole key files."""

from __future__ import annotations

import multiprocessing

from website.payments import sandbox


def _load(folder: str, out) -> None:  # type: ignore[no-untyped-def]
    keys = sandbox.load_keys(folder)
    out.put((keys.apiv3_key, [k.private_numbers().d for k in (getattr(keys, n) for n in sandbox.KEY_NAMES)]))


def test_sandbox_keys_racing_workers_read_one_whole_set(tmp_path):
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    procs = [ctx.Process(target=_load, args=(str(tmp_path), out)) for _ in range(6)]
    for p in procs:
        p.start()
    results = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    assert all(r == results[0] for r in results)
    assert not [f for f in (tmp_path / "sandbox").iterdir() if f.name.startswith(".")]  # no temp files left
