"""Host CPU, memory and disk via psutil, for a target on the same host as opscore."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

import psutil

# the row type lives in ops_core.model.sources (the delta rules read it too)
from ..model.sources import HOST_SOURCE  # noqa: F401

LOCAL_HOSTS = {"", "localhost", "127.0.0.1", "::1"}


def is_local(params: dict[str, str], embedded: bool) -> bool:
    """True when the target runs on this host: the embedded server, a Unix socket, loopback."""
    if embedded:
        return True
    host = params.get("hostaddr") or params.get("host") or os.environ.get("PGHOST", "")
    return all(h.startswith("/") or h in LOCAL_HOSTS for h in host.split(","))


def sample(data_directory: str | None = None) -> dict[str, Any]:
    """One reading of the host counters and gauges (row of :data:`HOST_SOURCE`)."""
    cpu = psutil.cpu_times()
    mem = psutil.virtual_memory()
    disk = psutil.disk_io_counters()
    net = psutil.net_io_counters()
    load = os.getloadavg()
    row: dict[str, Any] = {
        "cpu_user": cpu.user + getattr(cpu, "nice", 0.0),
        "cpu_system": cpu.system,
        "cpu_idle": cpu.idle,
        "cpu_iowait": getattr(cpu, "iowait", None),
        "cpu_steal": getattr(cpu, "steal", None),
        "disk_read_bytes": disk.read_bytes if disk else None,
        "disk_write_bytes": disk.write_bytes if disk else None,
        "disk_reads": disk.read_count if disk else None,
        "disk_writes": disk.write_count if disk else None,
        "net_bytes_sent": net.bytes_sent if net else None,
        "net_bytes_recv": net.bytes_recv if net else None,
        "cpu_count": psutil.cpu_count(),
        "load1": load[0],
        "load5": load[1],
        "load15": load[2],
        "mem_total": mem.total,
        "mem_available": mem.available,
        "mem_used": mem.used,
        "swap_used": psutil.swap_memory().used,
        "data_disk_total": None,
        "data_disk_used": None,
        "boot_time": datetime.fromtimestamp(psutil.boot_time(), UTC),
    }
    if data_directory:
        try:
            usage = psutil.disk_usage(data_directory)
            row["data_disk_total"], row["data_disk_used"] = usage.total, usage.used
        except OSError:
            pass
    return row
