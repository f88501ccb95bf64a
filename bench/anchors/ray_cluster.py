#!/usr/bin/env python3
"""Anchor: Ray's tasks on map-N, tree-N, heavy-N, mix-H-T and transfer
(see /work/shared/BENCHMARKS.md). Runs under the cached PyPI environment (ray 2.60):

    python bench/anchors/ray_cluster.py \
        --workloads map-10000,map-100000,tree-50000,transfer,heavy-8,mix-8-2000 --repeat 3 --transfer-repeat 9

Ray on one machine: ray.init(num_cpus=2), so at most two tasks run at once, each in its
own worker process (Ray's equivalent of 2 workers x 1 thread). Start-up is not timed; a
small untimed warm-up runs first so that the worker processes exist.

  map-N      N calls inc.remote(i), then ray.get of all N refs.
  tree-N     the binary add tree of BENCHMARKS.md built from remote calls that pass
             ObjectRefs (leaves inc.remote(i), then add.remote(a, b)), then ray.get(root).
  heavy-N    N remote calls of a pure-Python counting loop calibrated here to --task-ms.
  mix-H-T    H such heavy calls spread among T tiny ones (inc).
  transfer   two measurements of a 64 MiB float64 array made by one task and summed by
             another:
             - "shared-memory": on the one node above. Ray keeps large objects in the
               node's shared-memory object store; the consumer maps the producer's object,
               so no bytes move between processes. This is NOT a network hop.
             - "two-nodes": a second Ray cluster of two raylets on this host
               (ray.cluster_utils.Cluster, 1 CPU each, each with its own object store),
               producer pinned to one node and consumer to the other
               (NodeAffinitySchedulingStrategy, soft=False): the object manager copies the
               64 MiB over loopback. This is the figure comparable to Dask's and Tessera's
               worker-to-worker hop.
             Both as in the Dask anchor: mbPerSecond = bytes / (remote - local), where local
             is the same sum where the data already is.

Prints one JSON line per run and workload, then a median line per workload
("stat":"median"): usPerTask for map/tree, seconds and speedup (serialSeconds, the same
calls made plainly one after another in the driver, over seconds) for heavy/mix,
mbPerSecond for transfer.
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

from dask_local import eval_tree  # noqa: E402  (plain Python; no Dask import)

TRANSFER_BYTES = 64 * 1024 * 1024


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def spin(n):
    """The heavy task: counts, and says when it ran (seconds since the epoch)."""
    start = time.time()
    x = 0
    for i in range(n):
        x = (x + i * 7) % 1000003
    return (start, time.time(), x)


def inc(x):
    return x + 1


def add(x, y):
    return x + y


def calibrate(task_ms):
    n = 200_000
    spin(n)
    probes = []
    for _ in range(5):
        t0 = time.perf_counter()
        spin(n)
        probes.append(time.perf_counter() - t0)
    return max(1, int(n * task_ms / 1000 / statistics.median(probes)))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", default="map-10000,map-100000,tree-50000,transfer")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--transfer-repeat", type=int, default=9)
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--task-ms", type=float, default=150.0)
    parser.add_argument("--transfer-bytes", type=int, default=TRANSFER_BYTES)
    args = parser.parse_args(argv)
    workloads = [w for w in args.workloads.split(",") if w]

    warnings.filterwarnings("ignore")
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    import numpy as np
    import ray

    base = {"anchor": "ray", "rayVersion": ray.__version__, "cpus": args.cpus}

    r_inc = ray.remote(inc)
    r_add = ray.remote(add)
    r_spin = ray.remote(spin)

    @ray.remote
    def make(nbytes):
        return np.ones(nbytes // 8, dtype=np.float64)

    @ray.remote
    def total(xs):
        t0 = time.perf_counter()
        s = float(xs.sum())
        return s, time.perf_counter() - t0

    def run_map(n):
        t0 = time.perf_counter()
        values = ray.get([r_inc.remote(i) for i in range(n)])
        dt = time.perf_counter() - t0
        if len(values) != n or values[0] != 1 or values[-1] != n:
            raise SystemExit("map-%d: wrong results" % n)
        return {"tasks": n, "seconds": dt, "usPerTask": dt / n * 1e6}

    def run_tree(n):
        t0 = time.perf_counter()
        level = [r_inc.remote(i) for i in range(n)]
        tasks = n
        while len(level) > 1:
            nxt = [r_add.remote(level[j], level[j + 1]) for j in range(0, len(level) - 1, 2)]
            if len(level) % 2 == 1:
                nxt.append(r_inc.remote(level[-1]))
            tasks += len(nxt)
            level = nxt
        value = ray.get(level[0])
        dt = time.perf_counter() - t0
        if value != eval_tree(n):
            raise SystemExit("tree-%d: wrong result %r" % (n, value))
        return {"tasks": tasks, "seconds": dt, "usPerTask": dt / tasks * 1e6}

    def heavy_calls(workload, iters):
        """(function, arg) per task, in order."""
        kind, _, rest = workload.partition("-")
        if kind == "heavy":
            return [(spin, iters + i) for i in range(int(rest))]
        heavy, tiny = (int(x) for x in rest.split("-"))
        total_tasks = heavy + tiny
        step = total_tasks // heavy
        calls, h = [], 0
        for i in range(total_tasks):
            if h < heavy and i % step == 0:
                calls.append((spin, iters + h))
                h += 1
            else:
                calls.append((inc, i))
        return calls

    remote_of = {spin: r_spin, inc: r_inc}

    def run_heavy(calls):
        t0 = time.perf_counter()
        values = ray.get([remote_of[f].remote(a) for f, a in calls])
        dt = time.perf_counter() - t0
        if len(values) != len(calls):
            raise SystemExit("wrong number of results")
        # Heavy tasks running at once on average: their summed run times over the wall time.
        busy = sum(v[1] - v[0] for v in values if isinstance(v, tuple))
        return {"tasks": len(calls), "seconds": dt, "heavyInFlight": busy / dt}

    def run_transfer(strategy_a, strategy_b):
        payload = make.options(scheduling_strategy=strategy_a).remote(args.transfer_bytes)
        ray.wait([payload], fetch_local=False)
        # The baseline twice, the better kept (as Tessera's bench and the Dask anchor).
        t_local = c_local = s_local = None
        for _ in range(2):
            t0 = time.perf_counter()
            s, c = ray.get(total.options(scheduling_strategy=strategy_a).remote(payload))
            t = time.perf_counter() - t0
            if t_local is None or t - c < t_local - c_local:
                t_local, c_local, s_local = t, c, s
        t0 = time.perf_counter()
        s_remote, c_remote = ray.get(total.options(scheduling_strategy=strategy_b).remote(payload))
        t_remote = time.perf_counter() - t0
        if s_local != s_remote or s_local != args.transfer_bytes // 8:
            raise SystemExit("transfer: sums differ: %r %r" % (s_local, s_remote))
        hop = (t_remote - c_remote) - (t_local - c_local)
        del payload
        return {
            "bytes": args.transfer_bytes,
            "seconds": hop,
            "mbPerSecond": args.transfer_bytes / hop / 1e6 if hop > 0 else None,
            "localSeconds": t_local,
            "remoteSeconds": t_remote,
        }

    def report(workload, rows, extra):
        med = dict(base, workload=workload, stat="median", runs=len(rows), **extra)
        if workload.startswith("transfer"):
            # A hop of zero or less is no measurement: left out, and counted.
            valid = [r for r in rows if r["seconds"] > 0]
            med["invalidRuns"] = len(rows) - len(valid)
            rows = valid or rows
        sec = statistics.median(r["seconds"] for r in rows)
        med["seconds"] = sec
        if "tasks" in rows[0]:
            med["tasks"] = rows[0]["tasks"]
        if workload.startswith(("map-", "tree-")):
            med["usPerTask"] = sec / rows[0]["tasks"] * 1e6
        if "serialSeconds" in extra:
            med["speedup"] = extra["serialSeconds"] / sec
            med["heavyInFlight"] = statistics.median(r["heavyInFlight"] for r in rows)
        if workload.startswith("transfer"):
            med["bytes"] = args.transfer_bytes
            med["mbPerSecond"] = args.transfer_bytes / sec / 1e6 if sec > 0 else None
            med["localSeconds"] = statistics.median(r["localSeconds"] for r in rows)
            med["remoteSeconds"] = statistics.median(r["remoteSeconds"] for r in rows)
        emit(med)
        return med

    ray.init(
        num_cpus=args.cpus,
        include_dashboard=False,
        logging_level=logging.ERROR,
        log_to_driver=False,
        object_store_memory=1024 * 1024 * 1024,
    )
    try:
        ray.get([r_inc.remote(i) for i in range(200)])  # warm-up, untimed: worker processes up
        iters = None
        for w in workloads:
            if w == "transfer":
                continue
            rows = []
            extra = {}
            if w.startswith(("heavy-", "mix-")):
                if iters is None:
                    iters = calibrate(args.task_ms)
                calls = heavy_calls(w, iters)
                # The serial baseline: the same calls, plain, one after another in the driver.
                t0 = time.perf_counter()
                for f, a in calls:
                    f(a)
                serial = time.perf_counter() - t0
                ray.get([r_spin.remote(1000) for _ in range(args.cpus)])
                extra = {"iterations": iters, "taskMs": args.task_ms, "serialSeconds": serial, "serial": "plain calls in the driver"}
            for r in range(args.repeat):
                if w.startswith("map-"):
                    row = run_map(int(w[4:]))
                elif w.startswith("tree-"):
                    row = run_tree(int(w[5:]))
                elif w.startswith(("heavy-", "mix-")):
                    row = run_heavy(calls)
                else:
                    parser.error("unknown workload %r" % w)
                rows.append(row)
                emit(dict(base, workload=w, run=r + 1, **extra, **row))
            report(w, rows, extra)

        if "transfer" in workloads:
            # One node: the object stays in shared memory; the consumer maps it.
            rows = [run_transfer("DEFAULT", "DEFAULT") for _ in range(args.transfer_repeat)]
            for i, row in enumerate(rows):
                emit(dict(base, workload="transfer", mode="shared-memory", run=i + 1, **row))
            report("transfer", rows, {"mode": "shared-memory", "note": "one node: the consumer maps the object from the shared-memory store; no bytes cross between processes"})
    finally:
        ray.shutdown()

    if "transfer" in workloads:
        from ray.cluster_utils import Cluster
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        cluster = Cluster(
            initialize_head=True,
            head_node_args={"num_cpus": 1, "object_store_memory": 512 * 1024 * 1024},
        )
        try:
            cluster.add_node(num_cpus=1, object_store_memory=512 * 1024 * 1024)
            cluster.wait_for_nodes()
            ray.init(address=cluster.address, logging_level=logging.ERROR, log_to_driver=False)
            nodes = [n["NodeID"] for n in ray.nodes() if n["Alive"]]
            if len(nodes) < 2:
                raise SystemExit("transfer: the two-node cluster has %d nodes" % len(nodes))
            a = NodeAffinitySchedulingStrategy(node_id=nodes[0], soft=False)
            b = NodeAffinitySchedulingStrategy(node_id=nodes[1], soft=False)
            ray.get([r_inc.options(scheduling_strategy=s).remote(1) for s in (a, b)])
            rows = [run_transfer(a, b) for _ in range(args.transfer_repeat)]
            for i, row in enumerate(rows):
                emit(dict(base, workload="transfer", mode="two-nodes", cpus=2, run=i + 1, **row))
            report("transfer", rows, {"mode": "two-nodes", "cpus": 2, "note": "two raylets on this host, one CPU each: the object manager copies the array over loopback"})
        finally:
            ray.shutdown()
            cluster.shutdown()


if __name__ == "__main__":
    main()
