"""Under gevent, samples are written without the library's lock; the merged figures are the same, forks included."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent("""
    from gevent import monkey
    monkey.patch_all(os=False, signal=False)  # threading as the worker has it; a plain fork and wait
    import os, sys
    sys.path.insert(0, {root!r})
    from prometheus_client import CollectorRegistry, multiprocess, values
    from core import metrics

    assert values.ValueClass.__name__ == "SingleThreadValue", values.ValueClass
    for _ in range(5):
        metrics.billed("m-parent", 7)
    metrics.stream_opened()
    pid = os.fork()
    if pid == 0:  # a child writes to its own file, through the library's path
        metrics.billed("m-child", 3)
        metrics.billed("m-parent", 1)
        os._exit(0)
    os.waitpid(pid, 0)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    got = {{(s.name, tuple(sorted(s.labels.items()))): s.value for fam in registry.collect() for s in fam.samples}}
    print(got[("bytespike_credits_billed_total", (("model", "m-parent"),))],
          got[("bytespike_credits_billed_total", (("model", "m-child"),))],
          got[("bytespike_open_streams", ())])
""")


def test_single_thread_values_merge_across_a_fork(tmp_path):
    env = {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", SCRIPT.format(root=str(ROOT))], env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["36.0", "3.0", "1.0"]


def test_threads_keep_the_library_value(tmp_path):
    """Without gevent (real threads may write at once), the library's locked value stays."""
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(ROOT)!r})
        from prometheus_client import values
        from core import metrics
        print(values.ValueClass.__name__)
    """)
    out = subprocess.run([sys.executable, "-c", script], env={"PROMETHEUS_MULTIPROC_DIR": str(tmp_path)},
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "MmapedValue"
