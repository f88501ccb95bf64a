#!/usr/bin/env python3
"""Anchor: heavy-N and mix-H-T on Dask's schedulers (see /work/shared/BENCHMARKS.md).

Runs under either interpreter the benchmarks use (Dask 2026.8 from the cached PyPI
environment, or Debian's /usr/bin/python3 with python3-dask):

    python bench/anchors/dask_heavy.py --workloads heavy-8,mix-8-2000 --repeat 3 \
        --systems sync,threaded,processes,distributed-2x1,distributed-1x2

heavy-N: N independent tasks, each a pure-Python counting loop calibrated here to take
--task-ms (150) milliseconds on one thread. mix-H-T: H such heavy tasks spread among T
tiny ones (x + 1), all independent.

Systems: sync (dask.local.get_sync, the serial baseline), threaded (dask.threaded.get,
--threads threads: the GIL lets one pure-Python loop run at a time, so this does not
scale and is not the fair comparison), processes (dask.multiprocessing.get on a pool of
--threads processes, started before timing), distributed-WxT (LocalCluster of W worker
processes x T threads; 1x2 is again bound by the GIL).

Prints one JSON line per run, then per system a median line ("stat":"median") with
seconds, serialSeconds (sync's median), speedup = serialSeconds / seconds, and
heavyInFlight: the heavy tasks running at once on average (their summed run times over
the wall time; under the GIL two threads can both hold a task while only one runs).
"""

import argparse
import json
import logging
import statistics
import sys
import time
import warnings


def spin(n):
    """The heavy task: counts, and says when it ran (seconds since the epoch)."""
    start = time.time()
    x = 0
    for i in range(n):
        x = (x + i * 7) % 1000003
    return (start, time.time(), x)


def heavy_in_flight(values, seconds):
    """Heavy tasks running at once on average: their summed run times over the wall time."""
    busy = sum(v[1] - v[0] for v in values if isinstance(v, tuple) and len(v) == 3)
    return busy / seconds


def inc(x):
    return x + 1


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def calibrate(task_ms):
    """Iterations of spin that take task_ms on one thread (median of a few probes)."""
    n = 200_000
    spin(n)
    probes = []
    for _ in range(5):
        t0 = time.perf_counter()
        spin(n)
        probes.append(time.perf_counter() - t0)
    return max(1, int(n * task_ms / 1000 / statistics.median(probes)))


def graph_of(workload, iters):
    kind, _, rest = workload.partition("-")
    graph = {}
    if kind == "heavy":
        for i in range(int(rest)):
            graph["heavy-%d" % i] = (spin, iters + i)
    elif kind == "mix":
        heavy, tiny = (int(x) for x in rest.split("-"))
        total = heavy + tiny
        step = total // heavy
        h = 0
        for i in range(total):
            if h < heavy and i % step == 0:
                graph["heavy-%d" % h] = (spin, iters + h)
                h += 1
            else:
                graph["tiny-%d" % i] = (inc, i)
    else:
        raise ValueError(workload)
    return graph


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", default="heavy-8,mix-8-2000")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--task-ms", type=float, default=150.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--systems", default="sync,threaded,processes,distributed-2x1,distributed-1x2"
    )
    args = parser.parse_args(argv)
    systems = [s for s in args.systems.split(",") if s]

    warnings.filterwarnings("ignore")
    logging.getLogger("distributed").setLevel(logging.CRITICAL)

    import dask
    import dask.local
    import dask.multiprocessing
    import dask.threaded

    iters = calibrate(args.task_ms)
    workloads = [w for w in args.workloads.split(",") if w]
    graphs = {w: graph_of(w, iters) for w in workloads}

    def timed(get, graph, run):
        # Fresh keys every run: a distributed scheduler may still hold the last run's results.
        graph = {"%s-r%d" % (k, run): v for k, v in graph.items()}
        keys = list(graph)
        t0 = time.perf_counter()
        values = get(graph, keys)
        dt = time.perf_counter() - t0
        if len(values) != len(keys):
            raise SystemExit("wrong number of results")
        return dt, heavy_in_flight(values, dt)

    serial = {}
    base = {"anchor": "dask", "daskVersion": dask.__version__, "iterations": iters, "taskMs": args.task_ms}

    def run_system(system, get, extra):
        for w in workloads:
            graph = graphs[w]
            timed(get, graph_of("heavy-2", 1000), 0)  # warm-up, untimed
            seconds = []
            in_flight = []
            for r in range(args.repeat):
                dt, busy = timed(get, graph, r + 1)
                seconds.append(dt)
                in_flight.append(busy)
                emit(dict(base, workload=w, system=system, tasks=len(graph), run=r + 1, seconds=dt, heavyInFlight=busy, **extra))
            med = statistics.median(seconds)
            if system == "sync":
                serial[w] = med
            line = dict(base, workload=w, system=system, tasks=len(graph), stat="median", runs=len(seconds), seconds=med, heavyInFlight=statistics.median(in_flight), **extra)
            if w in serial:
                line["serialSeconds"] = serial[w]
                line["speedup"] = serial[w] / med
            emit(line)

    # sync first: it is every other system's baseline.
    ordered = (["sync"] if "sync" in systems else []) + [s for s in systems if s != "sync"]
    for system in ordered:
        if system == "sync":
            run_system("sync", dask.local.get_sync, {"threads": 1})
        elif system == "threaded":
            run_system(
                "threaded",
                lambda g, k: dask.threaded.get(g, k, num_workers=args.threads),
                {"threads": args.threads},
            )
        elif system == "processes":
            from concurrent.futures import ProcessPoolExecutor

            with ProcessPoolExecutor(args.threads) as pool:
                run_system(
                    "processes",
                    lambda g, k: dask.multiprocessing.get(g, k, pool=pool),
                    {"processes": args.threads},
                )
        elif system.startswith("distributed-"):
            import distributed

            nw, _, nt = system[len("distributed-"):].partition("x")
            with distributed.LocalCluster(
                n_workers=int(nw),
                threads_per_worker=int(nt),
                processes=True,
                dashboard_address=None,
                silence_logs=logging.CRITICAL,
            ) as cluster, distributed.Client(cluster) as client:
                client.wait_for_workers(int(nw))
                run_system(
                    system,
                    lambda g, k: client.get(g, k),
                    {"workers": int(nw), "threadsPerWorker": int(nt), "distributedVersion": distributed.__version__},
                )
        else:
            parser.error("unknown system %r" % system)


if __name__ == "__main__":
    main()
