"""Cluster DNS for Python processes run beside a test control plane (bench/kubernetes.ts).

On a cluster, CoreDNS answers `<service>.<namespace>`, `<service>.<namespace>.svc` and
`<service>.<namespace>.svc.cluster.local` with the Service's cluster IP. Pods of the test
node agent are local processes without a resolver of that kind, so this module, loaded by
Python at start-up from a directory on PYTHONPATH, answers those names the same way: it reads
the Service from the API server (server, CA and token from the kubeconfig named by
TESSERA_CLUSTER_DNS_KUBECONFIG) and returns its cluster IP; a Service that does not exist is
an unknown name (socket.gaierror), as NXDOMAIN would be. Every other name goes to the
system's resolver. The Service proxy of the node agent forwards cluster IPs to endpoints.

With TESSERA_POD_OWN_IP=1 (the Dask image's processes), it also gives the process what a pod's
network namespace would: a socket bound to the wildcard address (`--host 0.0.0.0`, or a port
alone) is bound to the pod's own IP instead, read from the pod's status (the pod is named by
HOSTNAME, as the kubelet sets it). Pods here share the host's network, where the Service
proxy already holds the Services' ports on their cluster IPs: a wildcard bind of the same
port would fail, and two pods could not both listen on 8788.
"""

import json
import os
import time
import re
import socket
import ssl
import urllib.error
import urllib.request

_KUBECONFIG = os.environ.get("TESSERA_CLUSTER_DNS_KUBECONFIG")
_NAME = re.compile(r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?)\.([a-z0-9]([-a-z0-9]*[a-z0-9])?)(\.svc(\.cluster\.local)?)?\.?$")

if _KUBECONFIG:
    _system_getaddrinfo = socket.getaddrinfo
    _api = None

    def _client():
        global _api
        if _api is None:
            with open(_KUBECONFIG, encoding="utf8") as f:
                config = json.load(f)
            cluster = config["clusters"][0]["cluster"]
            user = config["users"][0]["user"]
            context = ssl.create_default_context()
            ca = cluster.get("certificate-authority-data")
            if ca:
                import base64

                context.load_verify_locations(cadata=base64.b64decode(ca).decode())
            else:
                context.load_verify_locations(cafile=cluster["certificate-authority"])
            _api = (cluster["server"].rstrip("/"), user["token"], context)
        return _api

    def _cluster_ip(service, namespace):
        server, token, context = _client()
        request = urllib.request.Request(
            f"{server}/api/v1/namespaces/{namespace}/services/{service}",
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, context=context, timeout=5) as response:
                ip = json.load(response).get("spec", {}).get("clusterIP")
        except urllib.error.HTTPError as error:
            if error.code == 404:
                return None
            raise socket.gaierror(socket.EAI_AGAIN, f"cluster DNS: {error}") from error
        except OSError as error:
            raise socket.gaierror(socket.EAI_AGAIN, f"cluster DNS: {error}") from error
        return ip if ip and ip != "None" else None

    def getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
        name = host.decode() if isinstance(host, bytes) else host
        match = _NAME.match(name) if isinstance(name, str) else None
        if match is None or name in ("localhost.localdomain",):
            return _system_getaddrinfo(host, port, family, type, proto, flags)
        ip = _cluster_ip(match.group(1), match.group(3))
        if ip is None:
            if match.group(5) is None:
                # `a.b` may be a name outside the cluster (search domains come first on a pod).
                return _system_getaddrinfo(host, port, family, type, proto, flags)
            raise socket.gaierror(socket.EAI_NONAME, f"cluster DNS: no Service {match.group(3)}/{match.group(1)}")
        return _system_getaddrinfo(ip, port, family, type, proto, flags)

    socket.getaddrinfo = getaddrinfo

    # socket.connect((name, port)) resolves in C, past socket.getaddrinfo: answer it here too
    # (distributed finds the address it reaches the scheduler from that way).
    _system_connect = socket.socket.connect
    _system_connect_ex = socket.socket.connect_ex

    def _resolved(sock, address):
        if sock.family == socket.AF_INET and isinstance(address, tuple) and isinstance(address[0], str) and _NAME.match(address[0]):
            info = getaddrinfo(address[0], address[1], socket.AF_INET)
            return (info[0][4][0], *address[1:])
        return address

    def connect(self, address):
        return _system_connect(self, _resolved(self, address))

    def connect_ex(self, address):
        return _system_connect_ex(self, _resolved(self, address))

    socket.socket.connect = connect
    socket.socket.connect_ex = connect_ex

    if os.environ.get("TESSERA_POD_OWN_IP") == "1":
        _pod_ip_found = None

        def _pod_ip():
            global _pod_ip_found
            if _pod_ip_found is not None:
                return _pod_ip_found
            server, token, context = _client()
            name = os.environ.get("HOSTNAME", "")
            request = urllib.request.Request(
                f"{server}/api/v1/pods?fieldSelector=metadata.name%3D{name}",
                headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            )
            deadline = time.monotonic() + 15
            while True:
                # The node agent reports the IP with the pod's status, soon after starting it.
                try:
                    with urllib.request.urlopen(request, context=context, timeout=5) as response:
                        ips = [p.get("status", {}).get("podIP") for p in json.load(response).get("items", [])]
                except OSError:
                    ips = []
                ips = [ip for ip in ips if ip]
                if ips:
                    _pod_ip_found = ips[0]
                    return _pod_ip_found
                if time.monotonic() > deadline:
                    raise OSError(f"no pod IP for pod {name} in its status")
                time.sleep(0.1)

        _system_bind = socket.socket.bind

        def bind(self, address):
            if self.family == socket.AF_INET and isinstance(address, tuple) and address[0] in ("", "0.0.0.0"):
                address = (_pod_ip(), *address[1:])
            return _system_bind(self, address)

        socket.socket.bind = bind
