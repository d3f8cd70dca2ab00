# Copyright (c) densecl_plugin contributors. All rights reserved.
"""A real one-node Slurm cluster for the tests, started in a temporary dir.

:class:`SlurmCluster` writes a ``slurm.conf`` (free ports, all state under
one temporary folder, ``proctrack/linuxproc``, ``task/none``,
``select/cons_tres``), a ``gres.conf`` that declares GPUs backed by plain
files (so ``--gres=gpu:N`` is accepted on a machine without GPUs), starts a
private ``munged`` (its own key and socket), ``slurmctld`` and ``slurmd``,
and waits until the node answers. Two partitions share the node: ``cpu``
(the default) and ``gpu``. Commands reach it through ``SLURM_CONF``
(:attr:`SlurmCluster.env`).

:func:`why_no_slurm` says why a cluster cannot start here (not root, the
Debian packages ``slurmctld slurmd slurm-client munge`` missing), so the
tests can skip with that reason; ``.ci/run`` installs the packages.

Run it by hand (``python tests/slurm_cluster.py``) for a cluster to try
commands on; Ctrl-C stops it.
"""
import os
import os.path as osp
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from typing import Dict, Iterator, List, Optional

#: the binaries a cluster needs (Debian: slurmctld slurmd slurm-client munge)
BINARIES = ('munged', 'slurmctld', 'slurmd', 'srun', 'sbatch', 'squeue',
            'scontrol', 'sinfo')
#: GPU slots declared as gres (plain files) on the one node
NUM_GPUS = 2


def _which(name: str) -> Optional[str]:
    return shutil.which(name) or next(
        (p for p in (f'/usr/sbin/{name}', f'/usr/bin/{name}')
         if osp.exists(p)), None)


def why_no_slurm() -> Optional[str]:
    """Why a local cluster cannot start here, or None if it can."""
    missing = [b for b in BINARIES if _which(b) is None]
    if missing:
        return (f'Slurm is not installed ({", ".join(missing)} missing); '
                f'apt-get install -y slurmctld slurmd slurm-client munge '
                f'(.ci/run does)')
    if os.geteuid() != 0:
        return 'slurmd must run as root to start job steps; run as root'
    return None


def free_ports(n: int) -> List[int]:
    """``n`` distinct TCP ports free on 127.0.0.1 now."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(('127.0.0.1', 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class SlurmError(RuntimeError):
    """The cluster did not start; the message holds the daemons' logs."""


class SlurmCluster:
    """A one-node Slurm cluster under a temporary folder.

    Args:
        cpus (int): CPUs the node declares (more than the machine has is
            fine: ``SlurmdParameters=config_overrides``). Defaults to 8.
        gpus (int): GPU slots declared as gres. Defaults to
            :data:`NUM_GPUS`.
    """

    def __init__(self, cpus: int = 8, gpus: int = NUM_GPUS) -> None:
        self.cpus, self.gpus = cpus, gpus
        # short: a unix socket path must stay under 108 characters
        self.root = tempfile.mkdtemp(prefix='slurm-')
        os.chmod(self.root, 0o755)  # munged wants its socket reachable
        self.node = socket.gethostname()
        self.conf = osp.join(self.root, 'slurm.conf')
        self.procs: Dict[str, subprocess.Popen] = {}

    @property
    def env(self) -> Dict[str, str]:
        """The environment additions that point Slurm commands here."""
        return {'SLURM_CONF': self.conf}

    def _write_conf(self) -> None:
        r = self.root
        ctld_port, d_port = free_ports(2)
        os.makedirs(osp.join(r, 'state'), exist_ok=True)
        os.makedirs(osp.join(r, 'spool'), exist_ok=True)
        gpu_files = []
        for i in range(self.gpus):
            path = osp.join(r, f'gpu{i}')
            open(path, 'w').close()
            gpu_files.append(path)
        gres = f' Gres=gpu:{self.gpus}' if self.gpus else ''
        lines = [
            'ClusterName=densecl-test',
            f'SlurmctldHost={self.node}(127.0.0.1)',
            f'SlurmctldPort={ctld_port}',
            f'SlurmdPort={d_port}',
            'SlurmUser=root',
            'SlurmdUser=root',
            'AuthType=auth/munge',
            'CredType=cred/munge',
            f'AuthInfo=socket={r}/munge.sock',
            f'StateSaveLocation={r}/state',
            f'SlurmdSpoolDir={r}/spool',
            f'SlurmctldPidFile={r}/slurmctld.pid',
            f'SlurmdPidFile={r}/slurmd.pid',
            f'SlurmctldLogFile={r}/slurmctld.log',
            f'SlurmdLogFile={r}/slurmd.log',
            'SlurmctldDebug=info',
            'SlurmdDebug=info',
            'ProctrackType=proctrack/linuxproc',
            'TaskPlugin=task/none',
            'SelectType=select/cons_tres',
            'SelectTypeParameters=CR_CPU',
            'SchedulerType=sched/backfill',
            'MpiDefault=none',
            'JobAcctGatherType=jobacct_gather/none',
            'AccountingStorageType=accounting_storage/none',
            'JobCompType=jobcomp/none',
            'SwitchType=switch/none',
            'ReturnToService=2',
            'JobRequeue=1',
            'KillWait=3',
            'MinJobAge=3600',
            'SlurmdParameters=config_overrides',
            'GresTypes=gpu',
            f'NodeName={self.node} NodeAddr=127.0.0.1 CPUs={self.cpus} '
            f'RealMemory=1000{gres} State=UNKNOWN',
            f'PartitionName=cpu Nodes={self.node} Default=YES '
            'MaxTime=INFINITE State=UP OverSubscribe=NO',
            f'PartitionName=gpu Nodes={self.node} MaxTime=INFINITE State=UP',
        ]
        with open(self.conf, 'w') as f:
            f.write('\n'.join(lines) + '\n')
        with open(osp.join(r, 'gres.conf'), 'w') as f:
            for path in gpu_files:
                f.write(f'NodeName={self.node} Name=gpu File={path}\n')

    def _start_munge(self) -> None:
        r = self.root
        key = osp.join(r, 'munge.key')
        with open(key, 'wb') as f:
            f.write(os.urandom(1024))
        os.chmod(key, 0o400)
        subprocess.run(
            [_which('munged'), '--force', f'--key-file={key}',
             f'--socket={r}/munge.sock', f'--pid-file={r}/munged.pid',
             f'--log-file={r}/munged.log', f'--seed-file={r}/munged.seed'],
            check=True, capture_output=True, text=True)

    def _logs(self) -> str:
        out = []
        for name in ('munged.log', 'slurmctld.log', 'slurmd.log'):
            path = osp.join(self.root, name)
            if osp.exists(path):
                with open(path) as f:
                    tail = f.read().splitlines()[-15:]
                out.append(f'--- {path}\n' + '\n'.join(tail))
        return '\n'.join(out)

    def run(self, argv: List[str], **kwargs) -> subprocess.CompletedProcess:
        """Run a Slurm command against this cluster (text output)."""
        env = {**os.environ, **self.env, **kwargs.pop('env', {})}
        return subprocess.run(argv, env=env, capture_output=True, text=True,
                              **kwargs)

    def start(self, timeout: float = 60.) -> 'SlurmCluster':
        """Start munged, slurmctld and slurmd; wait until the node is idle."""
        self._write_conf()
        env = {**os.environ, **self.env}
        try:
            self._start_munge()
            # -D: stay in the foreground (a child we can stop); -i: ignore
            # saved state; -c: clear the job state
            self.procs['slurmctld'] = subprocess.Popen(
                [_which('slurmctld'), '-D', '-i', '-c', '-f', self.conf],
                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
            self.procs['slurmd'] = subprocess.Popen(
                [_which('slurmd'), '-D', '-f', self.conf, '-N', self.node],
                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        except (OSError, subprocess.CalledProcessError) as err:
            self.stop()
            raise SlurmError(f'could not start the daemons: {err}\n'
                             f'{getattr(err, "stderr", "")}{self._logs()}')
        deadline = time.time() + timeout
        while time.time() < deadline:
            for name, p in self.procs.items():
                if p.poll() is not None:
                    logs = self._logs()
                    self.stop()
                    raise SlurmError(f'{name} exited with {p.returncode}\n'
                                     f'{logs}')
            out = self.run(['sinfo', '-h', '-N', '-o', '%T']).stdout
            if out.strip() and all(s.strip().rstrip('*') == 'idle'
                                   for s in out.split()):
                return self
            time.sleep(0.5)
        logs = self._logs()
        self.stop()
        raise SlurmError(f'the node did not become idle in {timeout:.0f} s\n'
                         f'{logs}')

    def stop(self) -> None:
        """Cancel jobs, stop the daemons (SIGTERM, then SIGKILL), remove
        the folder."""
        if self.procs.get('slurmctld') is not None and \
                self.procs['slurmctld'].poll() is None:
            self.run(['scancel', '--full', '-u', 'root'], timeout=30)
        for name in ('slurmd', 'slurmctld'):
            p = self.procs.pop(name, None)
            if p is None or p.poll() is not None:
                continue
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        pid_file = osp.join(self.root, 'munged.pid')
        if osp.exists(pid_file):
            try:
                with open(pid_file) as f:
                    pid = int(f.read().strip())
                os.kill(pid, signal.SIGTERM)
            except (OSError, ValueError):
                pass
            else:
                # munged writes its seed file as it exits: wait for that,
                # or the folder would come back with it
                deadline = time.time() + 10
                while osp.exists(pid_file) and time.time() < deadline:
                    time.sleep(0.1)
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> 'SlurmCluster':
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def session_cluster() -> Iterator[SlurmCluster]:
    """The body of the session fixture ``slurm_cluster`` (tests/conftest.py):
    a started cluster, stopped afterwards; a skip that says why where it
    cannot start."""
    import pytest
    reason = why_no_slurm()
    if reason:
        pytest.skip(reason)
    cluster = SlurmCluster()
    try:
        cluster.start()
    except SlurmError as err:
        pytest.skip(f'the local Slurm cluster did not start: {err}')
    try:
        yield cluster
    finally:
        cluster.stop()


if __name__ == '__main__':
    reason = why_no_slurm()
    if reason:
        raise SystemExit(reason)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    with SlurmCluster() as cluster:
        print(f'export SLURM_CONF={cluster.conf}   # Ctrl-C (or SIGTERM) '
              f'stops the cluster', flush=True)
        try:
            signal.pause()
        except KeyboardInterrupt:
            pass
