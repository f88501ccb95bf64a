#!/usr/bin/env python3
"""Anchor: the real Dask distributed scheduler on map-N, tree-N and transfer
(see /work/shared/BENCHMARKS.md). Runs under Dask 2026.8 (the cached PyPI environment)
or Debian's /usr/bin/python3 with python3-distributed:

    python bench/anchors/dask_distributed.py \
        --workloads map-10000,map-100000,tree-50000,transfer --repeat 3 --transfer-repeat 9

Cluster: LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
dashboard_address=None), started once and shared by all workloads (start-up is
not timed). One small untimed warm-up map runs first so that the workers have
connected, unpickled the functions and warmed their comms.

Prints one JSON line per run and workload, then a median line per workload
("stat":"median"). map/tree lines carry "usPerTask"; transfer lines carry
"mbPerSecond" (MB = 10^6 bytes). Dask's logs are silenced; stderr may still show
a few warnings.
"""

import argparse
import json
import logging
import os
import statistics
import sys
import time
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from dask_local import build_tree, eval_tree  # noqa: E402

TRANSFER_BYTES = 64 * 1024 * 1024


# Defined in __main__ so cloudpickle ships them by value to the worker processes.
def inc(x):
    return x + 1


def add(x, y):
    return x + y


def make_payload(nbytes):
    try:
        import numpy as np

        return np.ones(nbytes // 8, dtype=np.float64)
    except ImportError:
        return bytes(nbytes)


def total(payload):
    t0 = time.perf_counter()
    try:
        import numpy as np

        if isinstance(payload, np.ndarray):
            s = float(payload.sum())
        else:
            s = float(sum(payload))
    except ImportError:
        s = float(sum(payload))
    return s, time.perf_counter() - t0


def worker_transfer_log(dask_worker):
    return [
        {"keys": list(e["keys"]), "total": e["total"], "duration": e["duration"]}
        for e in dask_worker.transfer_incoming_log
    ]


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def wait_idle(client, timeout=30.0):
    """Wait until the scheduler has forgotten all tasks of the previous run."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        n = client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks))
        if n == 0:
            return
        time.sleep(0.05)


def run_map(client, n):
    t0 = time.perf_counter()
    futures = client.map(inc, range(n), pure=False)
    results = client.gather(futures)
    dt = time.perf_counter() - t0
    if len(results) != n or results[0] != 1 or results[-1] != n:
        raise SystemExit("map-%d: wrong results" % n)
    del futures, results
    return {"tasks": n, "seconds": dt, "usPerTask": dt / n * 1e6}


def run_tree(client, n, tree):
    graph, root, expected = tree
    t0 = time.perf_counter()
    result = client.get(graph, root)
    dt = time.perf_counter() - t0
    if result != expected:
        raise SystemExit("tree-%d: wrong result %r, expected %r" % (n, result, expected))
    tasks = len(graph)
    return {"tasks": tasks, "seconds": dt, "usPerTask": dt / tasks * 1e6}


def run_transfer(client, a, b, nbytes):
    import distributed

    """What is measured.

    1. make_payload runs pinned to worker A (workers=[a], allow_other_workers=False)
       and we wait until it is in A's memory; this part is not timed.
    2. `local`: total() of that payload pinned to A (no transfer); wall time from
       submit to result. This is the baseline: scheduling + the sum + the result's
       round trip. It runs twice and the faster is kept.
    3. `remote`: total() of the same payload pinned to B; wall time from submit to
       result, which additionally includes B fetching 64 MiB from A (serialise on A,
       TCP over loopback, deserialise on B).

    mbPerSecond = bytes / (remote - local): the end-to-end cost of the hop as a user
    sees it. Each sum's own compute time is measured inside the task and
    subtracted from its wall time, so only the hop remains (the sums are ~10 ms
    each and nearly equal anyway). We also report
    `workerMbPerSecond` = bytes / duration of the fetch from B's
    transfer_incoming_log (the "gather_dep" comm round trip incl. deserialisation,
    as Dask itself measures it), which excludes scheduling.
    """
    payload = client.submit(
        make_payload, nbytes, pure=False, workers=[a], allow_other_workers=False
    )
    distributed.wait(payload)  # in A's memory; the payload itself never visits the client

    # The baseline twice, the better kept: a slow baseline would pass its delay off as a
    # faster hop (Tessera's bench does the same).
    t_local = c_local = s_local = None
    for _ in range(2):
        t0 = time.perf_counter()
        local = client.submit(total, payload, pure=False, workers=[a], allow_other_workers=False)
        s, c = local.result()
        t = time.perf_counter() - t0
        if t_local is None or t - c < t_local - c_local:
            t_local, c_local, s_local = t, c, s

    t0 = time.perf_counter()
    remote = client.submit(total, payload, pure=False, workers=[b], allow_other_workers=False)
    s_remote, c_remote = remote.result()
    t_remote = time.perf_counter() - t0
    # The whole log, searched by the payload's (unique) key: it is a bounded deque, which
    # after the tree workloads is full, so its length no longer tells new entries apart.
    log = client.run(worker_transfer_log, workers=[b])[b]

    expected = float(nbytes // 8) if s_local != 0 else 0.0
    if s_local != s_remote or s_local != expected:
        raise SystemExit("transfer: sums differ: %r %r" % (s_local, s_remote))
    hop = [e for e in log if payload.key in e["keys"]]
    if not hop:
        raise SystemExit("transfer: no transfer recorded on worker B")
    hop_seconds = (t_remote - c_remote) - (t_local - c_local)
    fetch_seconds = sum(e["duration"] for e in hop)
    del payload, local, remote
    return {
        "bytes": nbytes,
        "seconds": hop_seconds,
        "mbPerSecond": nbytes / hop_seconds / 1e6 if hop_seconds > 0 else None,
        "workerFetchSeconds": fetch_seconds,
        "workerMbPerSecond": nbytes / fetch_seconds / 1e6,
        "localSeconds": t_local,
        "remoteSeconds": t_remote,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--workloads",
        default="map-10000,map-100000,tree-50000,transfer",
        help="comma-separated: map-N, tree-N, transfer",
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--transfer-repeat", type=int, default=9)
    parser.add_argument("--transfer-bytes", type=int, default=TRANSFER_BYTES)
    args = parser.parse_args(argv)

    workloads = [w for w in args.workloads.split(",") if w]
    for w in workloads:
        kind, _, num = w.partition("-")
        if not ((kind in ("map", "tree") and num.isdigit()) or w == "transfer"):
            parser.error("unknown workload %r" % w)

    warnings.filterwarnings("ignore")
    logging.getLogger("distributed").setLevel(logging.CRITICAL)

    import dask
    import distributed

    dask.config.set({"distributed.logging.distributed": "critical"})

    # Build every tree before the cluster starts (graph building is not timed).
    trees = {}
    for w in workloads:
        if w.startswith("tree-"):
            n = int(w[5:])
            graph, root = build_tree(n, inc, add)
            trees[w] = (graph, root, eval_tree(n))

    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        silence_logs=logging.CRITICAL,
    ) as cluster, distributed.Client(cluster) as client:
        client.wait_for_workers(2)
        workers = sorted(client.scheduler_info()["workers"])
        a, b = workers[0], workers[1]
        run_map(client, 200)  # warm-up, untimed
        wait_idle(client)

        for w in workloads:
            base = {
                "anchor": "dask",
                "workload": w,
                "system": "distributed",
                "workers": 2,
                "threadsPerWorker": 1,
                "daskVersion": dask.__version__,
                "distributedVersion": distributed.__version__,
            }
            rows = []
            for r in range(args.transfer_repeat if w == "transfer" else args.repeat):
                if w.startswith("map-"):
                    row = run_map(client, int(w[4:]))
                elif w.startswith("tree-"):
                    row = run_tree(client, int(w[5:]), trees[w])
                else:
                    row = run_transfer(client, a, b, args.transfer_bytes)
                wait_idle(client)
                rows.append(row)
                line = dict(base)
                line["run"] = r + 1
                line.update(row)
                emit(line)
            if not rows:
                continue
            med = dict(base)
            med.update({"stat": "median", "runs": len(rows)})
            if w == "transfer":
                # A hop of zero or less is no measurement: left out, and counted.
                valid = [row for row in rows if row["seconds"] > 0]
                med["invalidRuns"] = len(rows) - len(valid)
                med["bytes"] = args.transfer_bytes
                for k in ("seconds", "workerFetchSeconds", "localSeconds", "remoteSeconds"):
                    med[k] = statistics.median(row[k] for row in (valid or rows))
                med["mbPerSecond"] = args.transfer_bytes / med["seconds"] / 1e6
                med["workerMbPerSecond"] = (
                    args.transfer_bytes / med["workerFetchSeconds"] / 1e6
                )
            else:
                tasks = rows[0]["tasks"]
                sec = statistics.median(row["seconds"] for row in rows)
                med.update({"tasks": tasks, "seconds": sec, "usPerTask": sec / tasks * 1e6})
            emit(med)


if __name__ == "__main__":
    main()
