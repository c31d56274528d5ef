"""A real single-node Slurm cluster on this machine, for the Slurm tests and CI.

    python tests/workflow/slurm/local_cluster.py start    # install (apt) if needed, configure, start, wait until idle
    python tests/workflow/slurm/local_cluster.py status   # exit 0 when the node answers and is usable
    python tests/workflow/slurm/local_cluster.py stop     # kill the daemons this script started (by PID), remove its config

Needs root and Debian's packages slurmctld, slurmd, slurm-client and munge (installed with apt-get when
missing). The node has four fake GPUs (GRES type ``fake`` backed by character devices), so jobs that ask for
``--gpus=fake:N`` are scheduled like GPU jobs and see ``CUDA_VISIBLE_DEVICES``; nothing can compute on them.
The config must live in /etc/slurm: the Snakemake jobstep plugin clears every ``SLURM_*`` variable inside
jobs, so ``SLURM_CONF`` pointing elsewhere would break ``srun`` there. A slurm.conf this script did not
write is never touched. ``stop`` removes the config again, because with the Slurm client installed and a
config naming a controller that is down, every Snakemake start pays ~10 s for the Slurm plugin's probe.
Only the standard library is used, so any Python 3 runs it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

PACKAGES = ("slurmctld", "slurmd", "slurm-client", "munge")
PROGRAMS = ("slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "munged")
SLURM_DIR = Path("/etc/slurm")
MUNGE_SOCKET_DIR = Path("/run/munge")
MUNGE_KEY = Path("/etc/munge/munge.key")
STATE_DIR = Path(os.environ.get("W2S_SLURM_STATE", "/tmp/w2s-local-slurm"))
MARKER = "# Written by tests/workflow/slurm/local_cluster.py (w2s-workflow): a throw-away single-node test cluster."
NODE = "localhost"
FAKE_GPUS = ("/dev/null", "/dev/zero", "/dev/full", "/dev/urandom")  # one character device per fake GPU
DAEMONS = ("slurmd", "slurmctld", "munged")  # stop order


class ClusterError(RuntimeError):
    pass


def _run(command: list[str], timeout: float = 60, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, **kwargs)


def _pid_file(daemon: str) -> Path:
    return STATE_DIR / "run" / f"{daemon}.pid"


def _read_pid(daemon: str) -> int | None:
    try:
        return int(_pid_file(daemon).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _daemon_pid(daemon: str) -> int | None:
    """The PID from the daemon's pid file if that process is still this daemon and running.

    A zombie counts as gone (PID 1 here does not reap), and so does a PID now used by another program.
    """
    pid = _read_pid(daemon)
    if not pid:
        return None
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    name, state = stat[stat.index("(") + 1 : stat.rindex(")")], stat[stat.rindex(")") + 1 :].split()[0]
    return pid if name == daemon[:15] and state not in ("Z", "X") else None


# --------------------------------------------------------------------------- install and configure


def ensure_installed() -> None:
    """apt-get install the Slurm and munge packages unless every program is already there."""
    if all(shutil.which(p) or Path("/usr/sbin", p).exists() for p in PROGRAMS):
        return
    if os.geteuid() != 0:
        raise ClusterError(f"Slurm is not installed and installing it needs root: apt-get install {' '.join(PACKAGES)}")
    if not shutil.which("apt-get"):
        raise ClusterError(f"Slurm is not installed and there is no apt-get to install {' '.join(PACKAGES)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *PACKAGES],
    ):
        result = _run(command, timeout=600, env=env)
        if result.returncode != 0:
            raise ClusterError(f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")


def _memory_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024
    raise ClusterError("cannot read MemTotal from /proc/meminfo")


def slurm_conf() -> str:
    state = STATE_DIR
    # Twice the real cores: test jobs mostly start Python, and two workflows can then run side by side.
    cpus = 2 * (os.cpu_count() or 1)
    memory = int(_memory_mb() * 0.8)
    return f"""{MARKER}
ClusterName=w2slocal
SlurmctldHost={NODE}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation={state}/spool/ctld
SlurmdSpoolDir={state}/spool/d
SlurmctldPidFile={_pid_file("slurmctld")}
SlurmdPidFile={_pid_file("slurmd")}
SlurmctldLogFile={state}/log/slurmctld.log
SlurmdLogFile={state}/log/slurmd.log
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
ReturnToService=2
SlurmdParameters=config_overrides
# Finished jobs stay visible to squeue/scontrol for 10 minutes: Snakemake polls status with squeue
# (there is no accounting database for sacct) and the tests read finished jobs back.
MinJobAge=600
SchedulerParameters=sched_interval=1
GresTypes=gpu
NodeName={NODE} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={memory} Gres=gpu:fake:{len(FAKE_GPUS)} State=UNKNOWN
PartitionName=cpu Nodes={NODE} Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes={NODE} MaxTime=INFINITE State=UP
"""


def gres_conf() -> str:
    return f"{MARKER}\nAutoDetect=off\nNodeName={NODE} Name=gpu Type=fake File={','.join(FAKE_GPUS)}\n"


def _ours(path: Path) -> bool:
    return path.read_text().startswith(MARKER)


def write_config() -> None:
    for path in (SLURM_DIR / "slurm.conf", SLURM_DIR / "gres.conf"):
        if path.exists() and not _ours(path):
            raise ClusterError(
                f"{path} exists and was not written by this script; refusing to replace a real cluster's configuration"
            )
    for sub in ("spool/ctld", "spool/d", "log", "run", "munge"):
        (STATE_DIR / sub).mkdir(parents=True, exist_ok=True)
    for log in (STATE_DIR / "log").glob("*.log"):
        log.unlink()  # so that an error report shows this start's log lines only
    SLURM_DIR.mkdir(parents=True, exist_ok=True)
    (SLURM_DIR / "slurm.conf").write_text(slurm_conf())
    (SLURM_DIR / "gres.conf").write_text(gres_conf())


def remove_config() -> None:
    for path in (SLURM_DIR / "slurm.conf", SLURM_DIR / "gres.conf"):
        if path.exists() and _ours(path):
            path.unlink()


# --------------------------------------------------------------------------- daemons


def _munge_works() -> bool:
    if not shutil.which("munge") or not shutil.which("unmunge"):
        return False
    try:
        credential = _run(["munge", "-n"], timeout=10)
        return credential.returncode == 0 and _run(["unmunge"], input=credential.stdout, timeout=10).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def _start_munged() -> None:
    """Start munged as user munge, unless a munged already answers (then it is not ours to stop)."""
    if _munge_works():
        return
    if not MUNGE_KEY.exists():
        raise ClusterError(f"{MUNGE_KEY} is missing (the munge package creates it on install)")
    munge_state = STATE_DIR / "munge"
    for path in (MUNGE_SOCKET_DIR, munge_state):
        path.mkdir(parents=True, exist_ok=True)
        shutil.chown(path, "munge", "munge")
    command = [
        "runuser",
        "-u",
        "munge",
        "--",
        _program("munged"),
        f"--pid-file={munge_state}/munged.pid",
        f"--log-file={munge_state}/munged.log",
        f"--seed-file={munge_state}/munged.seed",
    ]
    result = _run(command)
    if result.returncode != 0:
        raise ClusterError(f"munged did not start ({result.returncode}): {result.stderr.strip()}")
    _wait(_munge_works, 10, "munged to answer")
    # munged writes its pid file as user munge in its own directory; keep a copy with the others.
    _pid_file("munged").write_text((munge_state / "munged.pid").read_text())


def _program(name: str) -> str:
    found = shutil.which(name) or str(Path("/usr/sbin", name))
    if not Path(found).exists():
        raise ClusterError(f"{name} is not installed")
    return found


def _start_daemon(name: str, *args: str) -> None:
    if _daemon_pid(name):
        return
    result = _run([_program(name), *args])
    if result.returncode != 0:
        raise ClusterError(f"{name} did not start ({result.returncode}): {result.stderr.strip()}\n{_log_tail(name)}")
    _wait(lambda: _daemon_pid(name) is not None, 15, f"{name} to write its pid file")


def _log_tail(name: str, lines: int = 20) -> str:
    path = STATE_DIR / "log" / f"{name}.log"
    if not path.exists():
        return ""
    return f"last lines of {path}:\n" + "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def _wait(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise ClusterError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.2)


def node_state() -> str | None:
    """The node's state as sinfo reports it (``idle``, ``mixed``, ...), or None when the controller does not answer."""
    try:
        result = _run(["sinfo", "--noheader", "--nodes", NODE, "--format", "%T"], timeout=10)
    except (subprocess.TimeoutExpired, FileNotFoundError):
        return None
    states = result.stdout.split()
    return states[0] if result.returncode == 0 and states else None


def usable() -> bool:
    return node_state() in ("idle", "mixed", "allocated", "completing")


def running() -> bool:
    """True when this script's daemons are up and the node is usable."""
    return all(_daemon_pid(name) for name in ("slurmctld", "slurmd")) and usable()


def start(timeout: float = 60) -> bool:
    """Bring the cluster up; True if this call started it, False if it was already running."""
    if running():
        return False
    ensure_installed()
    write_config()
    try:
        _start_munged()
        _start_daemon("slurmctld", "-c")  # a fresh controller: no jobs recovered from an earlier run
        _start_daemon("slurmd", "-N", NODE)
        _wait(usable, timeout, f"node {NODE} to become usable")
    except ClusterError as error:
        report = f"{error} (node state: {node_state()})\n{_log_tail('slurmctld')}\n{_log_tail('slurmd')}"
        stop()  # leave no half-started cluster (nor its config) behind
        raise ClusterError(report) from None
    return True


def stop(timeout: float = 20) -> None:
    """SIGTERM each daemon this script started (by the PID in its pid file), then SIGKILL what is left."""
    pids = {name: _daemon_pid(name) for name in DAEMONS}
    for pid in pids.values():
        if pid:
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for name, pid in pids.items():
        while pid and _daemon_pid(name) == pid and time.monotonic() < deadline:
            time.sleep(0.2)
        if pid and _daemon_pid(name) == pid:
            os.kill(pid, signal.SIGKILL)
        _pid_file(name).unlink(missing_ok=True)
    remove_config()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["start", "stop", "status"])
    action = parser.parse_args(argv).action
    try:
        if action == "start":
            started = start()
            print(f"local Slurm cluster {'started' if started else 'already running'}: node {NODE} {node_state()}")
        elif action == "stop":
            stop()
            print("local Slurm cluster stopped")
        else:
            state = node_state() if running() else None
            print(f"local Slurm cluster: {'running, node ' + state if state else 'not running'}")
            return 0 if state else 1
    except ClusterError as error:
        print(f"local Slurm cluster: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
