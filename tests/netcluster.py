"""Test hosts in network namespaces: each host a namespace with its own address on a bridge, so what
crosses the network between driver, master, workers and the MLflow server really does.

The bridge is in this machine's namespace with the subnet's .1, so the test itself (the "control
host") can reach every host; the hosts have no route anywhere else. Names carry the creating
process's PID: a run that was killed leaves namespaces whose PID is dead, and the next run's
`NetCluster.create` removes them (their processes first). Needs root and iproute2 (`ip netns`).
"""

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

PREFIX = "rmlt"  # every namespace, bridge, veth and /etc/netns entry made here starts with it
ETC_NETNS = Path("/etc/netns")


def ip(*args, check=True):
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


def available():
    """None when namespaces can be made here, else why not (the tests skip with it)."""
    if os.geteuid() != 0:
        return "test hosts in network namespaces need root (CI runs as root)"
    probe = f"{PREFIX}probe{os.getpid()}"
    try:
        ip("netns", "add", probe)
    except (OSError, subprocess.CalledProcessError) as error:
        return f"`ip netns add` failed here: {getattr(error, 'stderr', '') or error}"
    ip("netns", "del", probe, check=False)
    return None


def _alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def _owner(name):
    digits = "".join(ch for ch in name[len(PREFIX):].split("-")[0] if ch.isdigit())
    return int(digits) if digits else None


def _kill_namespace_processes(namespace):
    listed = ip("netns", "pids", namespace, check=False).stdout.split()
    for pid in map(int, listed):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def remove_leftovers():
    """Namespaces and links of earlier runs whose creating process is gone."""
    for line in ip("netns", "list", check=False).stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        owner = _owner(name) if name.startswith(PREFIX) else None
        if owner is not None and not _alive(owner):
            _kill_namespace_processes(name)
            ip("netns", "del", name, check=False)
    for entry in ETC_NETNS.glob(f"{PREFIX}*"):
        owner = _owner(entry.name)
        if owner is not None and not _alive(owner):
            shutil.rmtree(entry, ignore_errors=True)
    for line in ip("-o", "link", "show", check=False).stdout.splitlines():
        name = line.split(":")[1].strip().split("@")[0] if line.count(":") >= 2 else ""
        owner = _owner(name) if name.startswith(PREFIX) else None
        if owner is not None and not _alive(owner):
            ip("link", "del", name, check=False)


class Host:
    """A host: its network namespace, and its own host name (a UTS namespace per command) that
    every host resolves through its /etc/hosts (`ip netns exec` mounts /etc/netns/<ns>/hosts)."""

    def __init__(self, name, namespace, address, veth):
        self.name, self.namespace, self.address, self.veth = name, namespace, address, veth
        self.hostname = namespace

    def command(self, argv):
        return ["ip", "netns", "exec", self.namespace, "unshare", "--uts", "--", "sh", "-c",
                'hostname "$0" && exec "$@"', self.hostname, *argv]

    def __repr__(self):
        return f"Host({self.name} {self.address})"


class NetCluster:
    """A bridge and one namespace per host name, each host at 10.213.<n>.<10+i>."""

    def __init__(self, names, root):
        self.root = root
        pid = os.getpid()
        self.bridge = f"{PREFIX}{pid}br"[:15]
        used = ip("-o", "-4", "addr", "show", check=False).stdout
        third = next(n for n in range(pid % 200 + 20, pid % 200 + 255)
                     if f"10.213.{n % 255}." not in used) % 255
        self.subnet = f"10.213.{third}"
        self.gateway = f"{self.subnet}.1"
        self.hosts = {name: Host(name, f"{PREFIX}{pid}-{name}", f"{self.subnet}.{10 + i}",
                                 f"{PREFIX}{pid}v{i}"[:15])
                      for i, name in enumerate(names)}
        self.processes = {name: [] for name in names}

    def create(self):
        remove_leftovers()
        ip("link", "add", self.bridge, "type", "bridge")
        ip("addr", "add", f"{self.gateway}/24", "dev", self.bridge)
        ip("link", "set", self.bridge, "up")
        names = "".join(f"{h.address} {h.hostname}\n" for h in self.hosts.values())
        for host in self.hosts.values():
            etc = ETC_NETNS / host.namespace
            etc.mkdir(parents=True, exist_ok=True)
            (etc / "hosts").write_text(f"127.0.0.1 localhost\n{names}")
            ip("netns", "add", host.namespace)
            ip("link", "add", host.veth, "type", "veth", "peer", "name", "eth0", "netns",
               host.namespace)
            ip("link", "set", host.veth, "master", self.bridge, "up")
            ip("-n", host.namespace, "addr", "add", f"{host.address}/24", "dev", "eth0")
            ip("-n", host.namespace, "link", "set", "eth0", "up")
            ip("-n", host.namespace, "link", "set", "lo", "up")
        return self

    def spawn(self, name, argv, env, log_name):
        """Start `argv` on host `name` in a session of its own; its output goes to a log file."""
        log = open(self.root / f"{log_name}.log", "ab")
        process = subprocess.Popen(self.hosts[name].command(argv), stdout=log,
                                   stderr=subprocess.STDOUT, env=env, start_new_session=True)
        self.processes[name].append(process)
        return process

    def cut(self, name):
        """The host's link goes down: nothing reaches it or leaves it, nothing is told."""
        ip("link", "set", self.hosts[name].veth, "down")

    def restore(self, name):
        ip("link", "set", self.hosts[name].veth, "up")

    def unroute(self, name, address):
        """`address` becomes unreachable from host `name` only: its packets go to a neighbour
        that does not exist, so connections time out as to a host that is gone."""
        ip("-n", self.hosts[name].namespace, "route", "add", f"{address}/32", "via",
           f"{self.subnet}.250")

    def reroute(self, name, address):
        ip("-n", self.hosts[name].namespace, "route", "del", f"{address}/32", check=False)

    def kill_host(self, name):
        """Every process on the host, SIGKILL, as when the machine dies (its link stays up, so
        its peers see its connections reset)."""
        _kill_namespace_processes(self.hosts[name].namespace)
        for process in self.processes[name]:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass

    def stop_processes(self, name):
        for process in reversed(self.processes[name]):
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 20
        for process in self.processes[name]:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        self.processes[name] = []

    def destroy(self):
        for name, host in self.hosts.items():
            self.stop_processes(name)
            _kill_namespace_processes(host.namespace)  # what the hosts' processes started
        for host in self.hosts.values():
            ip("netns", "del", host.namespace, check=False)
            shutil.rmtree(ETC_NETNS / host.namespace, ignore_errors=True)
        ip("link", "del", self.bridge, check=False)
