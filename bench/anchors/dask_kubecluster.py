#!/usr/bin/env python3
"""Anchor: dask-kubernetes' KubeCluster (the Dask operator's) on sleep-burst (see
/work/shared/BENCHMARKS.md), on the same control plane as Tessera's KubernetesBackend in the
same run (bench/kubernetes.ts starts the control plane, the node agent, the operator).

    python bench/anchors/dask_kubecluster.py --mode adaptive --tasks 40 --sleep 1 --maximum 4 \
        --kubeconfig /tmp/.../admin.kubeconfig --namespace bench --name dask-adaptive-0 \
        --image ghcr.io/dask/dask:2026.8.0 --site ~/.cache/tessera/bench-dask-kubernetes/<hash>

--site DIR is put first on the import path: where bench/kubernetes.ts installed
dask-kubernetes (`pip install --target`, beside the anchors' environment).

KubeCluster(namespace, custom_cluster_spec=make_cluster_spec(name, image, n_workers=0,
worker_command="dask worker --nthreads N") with the scheduler's command made `dask scheduler`)
from outside the cluster, as from a laptop:
the client reaches the scheduler's Service through a port-forward (kr8s, through the API
server's pods/portforward). --nthreads (default 1) as Tessera's worker pods have: Dask's
default is the machine's CPU count, which would give its pods more slots than Tessera's. --mode adaptive: cluster.adapt(minimum=0, maximum), which makes a
DaskAutoscaler the operator acts on; all tasks submitted at t0. --mode fixed:
cluster.scale(maximum), every worker joined, then the same tasks. Prints one JSON line
(seconds, from t0 unless stated):
  clusterStartSeconds        KubeCluster(...) -> returned (scheduler pod ready, port-forward open)
  firstPodRunningSeconds     t0 -> first worker pod of the cluster Running (API, every 0.1 s)
  firstWorkerSeconds         t0 -> first worker registered with the scheduler
  firstResultSeconds, totalSeconds, peakPods, peakWorkers, podsCreated
  backToOnePodSeconds        last result -> at most one worker pod left; null past --settle-cap
  resultsRetrievable         gathering the same futures again after that returns every value
  startAllWorkersSeconds     (fixed) scale(maximum) -> every worker registered
  podsLeftAfterClose         pods of the cluster once cluster.close() returned;
                             namespaceEmptySecondsAfterClose: until there are none
"""

import argparse
import json
import logging
import os
import sys
import threading
import time
import warnings


def slow_math(i, seconds):
    time.sleep(seconds)
    return i * i % 97 + 1


def expected_value(i):
    return i * i % 97 + 1


class PodWatch(threading.Thread):
    """Samples the cluster's pods: when a worker pod first runs, the peak, every name seen."""

    def __init__(self, kr8s, namespace, name, period):
        super().__init__(daemon=True)
        self.kr8s = kr8s
        self.namespace = namespace
        self.selector = {"dask.org/cluster-name": name}
        self.period = period
        self.first_running = None
        self.names = set()
        self.peak = 0
        self.running = 0
        self.stop = threading.Event()

    def pods(self, component=None):
        selector = dict(self.selector)
        if component is not None:
            selector["dask.org/component"] = component
        return list(self.kr8s.get("pods", namespace=self.namespace, label_selector=selector))

    def run(self):
        while not self.stop.is_set():
            try:
                pods = self.pods("worker")
            except Exception:  # a request that failed: sample again
                pods = None
            if pods is not None:
                running = [p for p in pods if p.status.get("phase") == "Running" and p.metadata.get("deletionTimestamp") is None]
                self.names.update(p.name for p in pods)
                self.running = len(running)
                self.peak = max(self.peak, len(running))
                if running and self.first_running is None:
                    self.first_running = time.monotonic()
            self.stop.wait(self.period)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=["adaptive", "fixed"], default="adaptive")
    parser.add_argument("--tasks", type=int, default=40)
    parser.add_argument("--sleep", type=float, default=1.0)
    parser.add_argument("--maximum", type=int, default=4)
    parser.add_argument("--nthreads", type=int, default=1)
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--namespace", default="bench")
    parser.add_argument("--name", default="dask-burst")
    parser.add_argument("--image", default="ghcr.io/dask/dask:latest")
    parser.add_argument("--settle-cap", type=float, default=60.0)
    parser.add_argument("--resource-timeout", type=int, default=120)
    parser.add_argument("--site", default=None)
    args = parser.parse_args(argv)
    if args.site is not None:
        sys.path.insert(0, args.site)
    os.environ["KUBECONFIG"] = args.kubeconfig

    warnings.filterwarnings("ignore")
    logging.getLogger("distributed").setLevel(logging.CRITICAL)

    import dask
    import dask_kubernetes
    import distributed
    import kr8s
    from dask_kubernetes.operator import KubeCluster, make_cluster_spec
    from distributed import Client, as_completed

    watch = PodWatch(kr8s, args.namespace, args.name, 0.1)
    line = {
        "anchor": "dask-kubernetes",
        "workload": "sleep-burst",
        "mode": args.mode,
        "tasks": args.tasks,
        "sleepSeconds": args.sleep,
        "maximum": args.maximum,
        "nthreads": args.nthreads,
        "image": args.image,
        "daskVersion": dask.__version__,
        "distributedVersion": distributed.__version__,
        "daskKubernetesVersion": dask_kubernetes.__version__,
        "kr8sVersion": kr8s.__version__,
    }
    # The defaults name the `dask-scheduler` and `dask-worker` scripts, which distributed no
    # longer installs (only `dask scheduler`, `dask worker`): a pod of the Dask image of
    # today would exit at once. So the spec names the commands the image has.
    spec = make_cluster_spec(name=args.name, image=args.image, n_workers=0, worker_command=f"dask worker --nthreads {args.nthreads}")
    [scheduler_container] = spec["spec"]["scheduler"]["spec"]["containers"]
    scheduler_container["args"] = ["dask", "scheduler"] + scheduler_container["args"][1:]
    line["schedulerArgs"] = scheduler_container["args"]
    line["workerArgs"] = spec["spec"]["worker"]["spec"]["containers"][0]["args"]
    c0 = time.monotonic()
    cluster = KubeCluster(
        namespace=args.namespace,
        custom_cluster_spec=spec,
        port_forward_cluster_ip=True,
        resource_timeout=args.resource_timeout,
        shutdown_on_close=True,
        quiet=True,
    )
    line["clusterStartSeconds"] = time.monotonic() - c0
    try:
        client = Client(cluster, timeout=60)
        workers = lambda: len(client.scheduler_info(n_workers=-1)["workers"])  # noqa: E731
        watch.start()
        if args.mode == "fixed":
            s0 = time.monotonic()
            cluster.scale(args.maximum)
            client.wait_for_workers(args.maximum, timeout=300)
            line["startAllWorkersSeconds"] = time.monotonic() - s0
        else:
            cluster.adapt(minimum=0, maximum=args.maximum)

        peak_workers = [0]
        first_worker = [None]
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                try:
                    n = workers()
                except Exception:
                    n = 0
                peak_workers[0] = max(peak_workers[0], n)
                if n > 0 and first_worker[0] is None:
                    first_worker[0] = time.monotonic()
                stop.wait(0.1)

        sampler = threading.Thread(target=sample, daemon=True)
        t0 = time.monotonic()
        sampler.start()
        futures = client.map(slow_math, range(args.tasks), [args.sleep] * args.tasks, pure=False)
        index_of = {f.key: i for i, f in enumerate(futures)}
        first_result = None
        for fut in as_completed(futures):
            if first_result is None:
                first_result = time.monotonic()
            if fut.result() != expected_value(index_of[fut.key]):
                raise SystemExit("sleep-burst: wrong result")
        last_result = time.monotonic()

        back = None
        if args.mode == "adaptive":
            while time.monotonic() < last_result + args.settle_cap:
                if watch.running <= 1 and len(watch.pods("worker")) <= 1:
                    back = time.monotonic() - last_result
                    break
                time.sleep(0.2)
        stop.set()
        sampler.join()
        try:
            values = client.gather(futures)
            retrievable = all(v == expected_value(i) for i, v in enumerate(values))
        except Exception:  # lost results, timeouts
            retrievable = False

        start = lambda t: None if t is None else t - t0  # noqa: E731
        line.update(
            {
                "firstPodRunningSeconds": start(watch.first_running) if args.mode == "adaptive" else None,
                "firstWorkerSeconds": start(first_worker[0]) if args.mode == "adaptive" else None,
                "firstResultSeconds": first_result - t0,
                "totalSeconds": last_result - t0,
                "peakPods": watch.peak,
                "peakWorkers": peak_workers[0],
                "backToOnePodSeconds": back,
                "resultsRetrievable": retrievable,
            }
        )
        client.close()
    finally:
        watch.stop.set()
        cluster.close()
        closed = time.monotonic()
        line["podsCreated"] = len(watch.names)
        line["podsLeftAfterClose"] = len(watch.pods())
        while watch.pods() and time.monotonic() < closed + args.settle_cap:
            time.sleep(0.2)
        line["namespaceEmptySecondsAfterClose"] = time.monotonic() - closed
    sys.stdout.write(json.dumps(line) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
