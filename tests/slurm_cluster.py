"""A real one-node Slurm cluster on localhost, for the tests and for trying the profile.

Debian's ``slurm-wlm`` and ``munge`` packages provide the daemons; this module writes a
minimal configuration into a scratch folder and starts ``munged``, ``slurmctld`` and
``slurmd`` from it (as root: the daemons run as root and so do the jobs), waits until the
node is idle, and stops them again. Every file lives in the folder except one link:
:data:`DEFAULT_CONF` points at the folder's slurm.conf while the cluster runs, because
Snakemake's job step clears every ``SLURM_*`` variable (``SLURM_CONF`` too) before it
calls ``srun`` inside a job, so srun reads the default path. A real slurm.conf there is
never replaced.

The configuration has no accounting database: job states come from ``squeue``, which
slurmctld answers for finished jobs during ``MinJobAge`` seconds. Memory is a consumable
resource and is enforced without cgroups: ``jobacct_gather/linux`` samples every process of
a job each second and ``OverMemoryKill`` kills a job whose resident memory exceeds its
request (Slurm then reports ``OUT_OF_MEMORY``).

From a shell (root)::

    python tests/slurm_cluster.py start /tmp/slurm   # prints: export SLURM_CONF=...
    python tests/slurm_cluster.py stop /tmp/slurm
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

#: The daemons this module starts, in start order (stopped in reverse).
DAEMONS = ("munged", "slurmctld", "slurmd")

#: Where Slurm's clients look for slurm.conf when SLURM_CONF is unset.
DEFAULT_CONF = Path("/etc/slurm/slurm.conf")

#: The one partition.
PARTITION = "main"

#: Seconds slurmctld keeps a finished job, so that ``squeue`` can report its state: the
#: Snakemake Slurm plugin uses squeue only when this is at least 3 x its first poll delay,
#: and the tests read every job's final state after the whole run.
MIN_JOB_AGE_S = 3600


def available() -> bool:
    """Whether the Slurm and munge daemons and clients are installed."""
    return all(shutil.which(name) for name in (*DAEMONS, "sbatch", "squeue", "sinfo"))


def node_memory_mb() -> int:
    """Memory the node offers to jobs: 95 % of MemTotal (slurmd drains a node that has
    less than its configured RealMemory)."""
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(int(line.split()[1]) / 1024 * 0.95)
    raise RuntimeError("no MemTotal in /proc/meminfo")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class SlurmCluster:
    """A one-node Slurm cluster whose every file lives under ``root``."""

    root: Path

    def __post_init__(self) -> None:
        self.root = Path(self.root).resolve()
        self.conf = self.root / "slurm.conf"

    @property
    def env(self) -> dict[str, str]:
        """Environment variables that point Slurm's clients at this cluster."""
        return {"SLURM_CONF": str(self.conf)}

    def write_config(self) -> None:
        """Write the munge key and slurm.conf (fresh ports, this machine's CPUs and memory)."""
        for sub in ("ctld", "d", "munge", "log"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        (self.root / "munge").chmod(0o700)
        key = self.root / "munge" / "munge.key"
        if not key.exists():
            key.write_bytes(os.urandom(1024))
            key.chmod(0o600)
        node = socket.gethostname().split(".")[0]
        self.conf.write_text(
            f"""\
# One-node test cluster written by tests/slurm_cluster.py
ClusterName=neurofusion
SlurmctldHost=localhost
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={self.root}/munge/munge.socket
StateSaveLocation={self.root}/ctld
SlurmdSpoolDir={self.root}/d
SlurmctldPidFile={self.root}/slurmctld.pid
SlurmdPidFile={self.root}/slurmd.pid
SlurmctldLogFile={self.root}/log/slurmctld.log
SlurmdLogFile={self.root}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SwitchType=switch/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=task=1
JobAcctGatherParams=OverMemoryKill
MinJobAge={MIN_JOB_AGE_S}
ReturnToService=2
SlurmdTimeout=60
NodeName={node} NodeAddr=127.0.0.1 CPUs={os.cpu_count()} RealMemory={node_memory_mb()} State=UNKNOWN
PartitionName={PARTITION} Nodes=ALL Default=YES MaxTime=INFINITE State=UP
"""
        )

    def start(self, timeout: float = 60) -> None:
        """Start munged, slurmctld and slurmd; return once the node is idle."""
        self.write_config()
        self._link_default_conf()
        munge = self.root / "munge"
        self._run(
            "munged",
            "--force",
            f"--socket={munge}/munge.socket",
            f"--key-file={munge}/munge.key",
            f"--pid-file={munge}/munged.pid",
            f"--log-file={self.root}/log/munged.log",
            f"--seed-file={munge}/munged.seed",
        )
        self._run("slurmctld", "-f", str(self.conf))
        self._run("slurmd", "-f", str(self.conf))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.client("sinfo", "--noheader", "--format=%t", check=False).stdout
            if state.strip() == "idle":
                return
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"the Slurm node did not become idle in {timeout} s\n{self.logs()}")

    def stop(self) -> None:
        """Stop the daemons this cluster started (found by their pid files)."""
        pid_files = {
            "munged": self.root / "munge" / "munged.pid",
            "slurmctld": self.root / "slurmctld.pid",
            "slurmd": self.root / "slurmd.pid",
        }
        for name in reversed(DAEMONS):
            path = pid_files[name]
            if not path.exists():
                continue
            pid = int(path.read_text().split()[0])
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            else:
                for _ in range(100):  # up to 10 s
                    try:
                        os.kill(pid, 0)
                    except ProcessLookupError:
                        break
                    time.sleep(0.1)
            path.unlink(missing_ok=True)
        if DEFAULT_CONF.is_symlink() and DEFAULT_CONF.readlink() == self.conf:
            DEFAULT_CONF.unlink()

    def _link_default_conf(self) -> None:
        """Point :data:`DEFAULT_CONF` at this cluster's slurm.conf (see the module's doc)."""
        if DEFAULT_CONF.is_symlink() and not DEFAULT_CONF.exists():
            DEFAULT_CONF.unlink()  # left by a cluster whose folder is gone
        if DEFAULT_CONF.exists() or DEFAULT_CONF.is_symlink():
            raise RuntimeError(
                f"{DEFAULT_CONF} exists (a real cluster, or another test cluster is running); "
                "stop that test cluster or run these tests on a machine without Slurm"
            )
        DEFAULT_CONF.parent.mkdir(parents=True, exist_ok=True)
        DEFAULT_CONF.symlink_to(self.conf)

    def client(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """Run a Slurm client command (sinfo, squeue, sbatch, ...) against this cluster."""
        return subprocess.run(
            args,
            env={**os.environ, **self.env},
            capture_output=True,
            text=True,
            check=check,
            timeout=30,
        )

    def logs(self) -> str:
        """The daemons' logs, for error messages."""
        return "\n".join(
            f"--- {path.name}\n{path.read_text()[-3000:]}"
            for path in sorted((self.root / "log").glob("*.log"))
        )

    def _run(self, *args: str) -> None:
        run = subprocess.run(
            args, env={**os.environ, **self.env}, capture_output=True, text=True, check=False
        )
        if run.returncode != 0:
            self.stop()
            raise RuntimeError(f"{args[0]} failed: {run.stderr}\n{self.logs()}")


if __name__ == "__main__":
    action, folder = sys.argv[1:3]
    cluster = SlurmCluster(Path(folder))
    if action == "start":
        cluster.start()
        print(f"export SLURM_CONF={cluster.conf}")
    else:
        cluster.stop()
