/**
 * slurm.conf for a private one-node cluster: every path in one directory, daemons on the
 * given ports, one node and one partition, and timings shortened so that tests see
 * scheduling within a second and a cancelled job's processes gone within seconds.
 */

export interface SlurmConfig {
  readonly clusterName: string;
  /** Holds state, spool, pid files, logs and the MUNGE socket. */
  readonly dir: string;
  readonly mungeSocket: string;
  readonly ctldPort: number;
  readonly slurmdPort: number;
  readonly nodeName: string;
  /** May exceed the machine's: slurmd is told to trust the configuration (config_overrides). */
  readonly cpus: number;
  /** RealMemory, in megabytes; may exceed the machine's too. */
  readonly memoryMB: number;
  readonly partition: string;
  /** Seconds between a job's SIGTERM and its SIGKILL (when cancelled or out of time). */
  readonly killWait: number;
  /** Seconds a finished job stays visible to `squeue` (with its end state and reason). */
  readonly minJobAge: number;
  /** slurmdbd's port when the cluster keeps accounting (sacct); undefined for none. */
  readonly dbdPort: number | undefined;
  /** Lines appended last; a later line overrides an earlier key. */
  readonly extra: readonly string[];
}

/**
 * Why these settings:
 * - SlurmUser/SlurmdUser root: the tests run as root and jobs run as their submitter.
 * - AuthInfo=socket=…: daemons and client commands alike talk to this cluster's munged.
 * - proctrack/linuxproc, task/none, no cgroups: works in containers without delegation;
 *   a job's processes are found through their parent links and killed with the job.
 * - select/cons_tres with CR_Core_Memory and DefMemPerCPU: CPUs and memory are both
 *   consumed, so a job asking for more than is free waits PENDING (Resources).
 * - sched/backfill, SchedulerParameters=bf_interval=1,sched_interval=1,batch_sched_delay=0:
 *   a batch job never starts inside its sbatch call (slurmctld only queues a scheduler
 *   request), and the requests are served by slurmctld's background loop, which ticks once
 *   a second; these settings make both the main scheduler (default: every 60 s, or 3 s
 *   after a submission) and backfill (default: every 30 s) run on every tick. So a job
 *   starts 0–1 s after submission or after the job it waited for ends; nothing is faster.
 * - Walltime cannot be made faster than Slurm's own granularity: --time is in whole
 *   minutes (seconds round up) and slurmctld checks limits every 30 s (PERIODIC_TIMEOUT,
 *   compiled in), so a --time=1 job ends TIMEOUT 60–90 s after it starts; OverTimeLimit=0.
 * - jobcomp/filetxt: a key=value line per finished job (JobState=COMPLETED, FAILED,
 *   CANCELLED, TIMEOUT…) that outlives MinJobAge. `sacct` needs slurmdbd (and MariaDB):
 *   without `dbdPort` there is none, and `squeue -t all` shows end states instead.
 * - With slurmdbd, AccountingStoragePass names the MUNGE socket: slurmctld's and the
 *   client commands' connections to slurmdbd ignore AuthInfo and would use the system's.
 */
export function slurmConf(c: SlurmConfig): string {
  const d = c.dir;
  const defMemPerCpu = Math.max(1, Math.floor(c.memoryMB / c.cpus));
  const lines = [
    `ClusterName=${c.clusterName}`,
    `SlurmctldHost=localhost(127.0.0.1)`,
    `SlurmctldPort=${c.ctldPort}`,
    `SlurmdPort=${c.slurmdPort}`,
    'SlurmUser=root',
    'SlurmdUser=root',
    'AuthType=auth/munge',
    'CredType=cred/munge',
    `AuthInfo=socket=${c.mungeSocket}`,
    `StateSaveLocation=${d}/state`,
    `SlurmdSpoolDir=${d}/spool`,
    `SlurmctldPidFile=${d}/run/slurmctld.pid`,
    `SlurmdPidFile=${d}/run/slurmd.pid`,
    `SlurmctldLogFile=${d}/log/slurmctld.log`,
    `SlurmdLogFile=${d}/log/slurmd.log`,
    'SlurmctldDebug=info',
    'SlurmdDebug=info',
    'MailProg=/bin/true',
    'MpiDefault=none',
    'ProctrackType=proctrack/linuxproc',
    'TaskPlugin=task/none',
    'JobAcctGatherType=jobacct_gather/none',
    ...(c.dbdPort === undefined
      ? ['AccountingStorageType=accounting_storage/none']
      : ['AccountingStorageType=accounting_storage/slurmdbd', 'AccountingStorageHost=127.0.0.1', `AccountingStoragePort=${c.dbdPort}`, `AccountingStoragePass=${c.mungeSocket}`]),
    'JobCompType=jobcomp/filetxt',
    `JobCompLoc=${d}/log/jobcomp.txt`,
    'SelectType=select/cons_tres',
    'SelectTypeParameters=CR_Core_Memory',
    `DefMemPerCPU=${defMemPerCpu}`,
    'SchedulerType=sched/backfill',
    'SchedulerParameters=bf_interval=1,sched_interval=1,batch_sched_delay=0',
    'SlurmdParameters=config_overrides',
    'ReturnToService=2',
    `KillWait=${c.killWait}`,
    'OverTimeLimit=0',
    `MinJobAge=${c.minJobAge}`,
    'InactiveLimit=0',
    'Waittime=0',
    `NodeName=${c.nodeName} NodeAddr=127.0.0.1 CPUs=${c.cpus} RealMemory=${c.memoryMB} State=UNKNOWN`,
    `PartitionName=${c.partition} Nodes=${c.nodeName} Default=YES MaxTime=INFINITE State=UP`,
    ...c.extra,
  ];
  return lines.join('\n') + '\n';
}

export interface SlurmdbdConfig {
  readonly dir: string;
  readonly mungeSocket: string;
  readonly dbdPort: number;
  readonly mysqlPort: number;
}

/** slurmdbd.conf, read from beside slurm.conf; slurmdbd wants it private (mode 0600). */
export function slurmdbdConf(c: SlurmdbdConfig): string {
  return (
    [
      'AuthType=auth/munge',
      `AuthInfo=socket=${c.mungeSocket}`,
      'DbdHost=localhost',
      'DbdAddr=127.0.0.1',
      `DbdPort=${c.dbdPort}`,
      'SlurmUser=root',
      'StorageType=accounting_storage/mysql',
      'StorageHost=127.0.0.1',
      `StoragePort=${c.mysqlPort}`,
      'StorageUser=root',
      'StorageLoc=slurm_acct_db',
      `PidFile=${c.dir}/run/slurmdbd.pid`,
      `LogFile=${c.dir}/log/slurmdbd.log`,
      'DebugLevel=info',
    ].join('\n') + '\n'
  );
}
