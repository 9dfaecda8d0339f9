/**
 * Readers for the Linux /proc figures the benchmark reports: a process's CPU time (utime + stime from
 * /proc/PID/stat), its resident memory (VmRSS from /proc/PID/status), its open-file limit, and how busy the
 * rest of the machine is (/proc/stat). Linux only, like the rest of the harness.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

let clockTicks: number | null = null;

/** Kernel clock ticks per second (`getconf CLK_TCK`); /proc CPU times are counted in these units. */
export function clockTicksPerSecond(): number {
  if (clockTicks === null) {
    const out = execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim();
    const n = Number(out);
    // USER_HZ has been 100 on every Linux ABI for decades; fall back to it rather than refusing to run.
    clockTicks = Number.isFinite(n) && n > 0 ? n : 100;
  }
  return clockTicks;
}

/** utime + stime of a process (all its threads), in clock ticks. */
export function processCpuTicks(pid: number): number {
  return cpuTicksOf(`/proc/${pid}/stat`);
}

/** utime + stime of a process's main thread alone (the thread whose id is the pid: Node's event loop). */
export function mainThreadCpuTicks(pid: number): number {
  return cpuTicksOf(`/proc/${pid}/task/${pid}/stat`);
}

function cpuTicksOf(statPath: string): number {
  const stat = readFileSync(statPath, 'latin1');
  // Field 2 (comm) is in parentheses and may itself contain spaces or ')', so count fields after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // After comm, fields start at #3 (state); utime is #14 and stime #15.
  return Number(fields[14 - 3]) + Number(fields[15 - 3]);
}

/** Resident set size of a process in kB (VmRSS). */
export function processRssKb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'latin1');
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  if (m === null) throw new Error(`no VmRSS in /proc/${pid}/status (process gone or a kernel thread?)`);
  return Number(m[1]);
}

/** CPUs a process may run on (`Cpus_allowed_list`, e.g. "0" or "0-1"). */
export function processAllowedCpus(pid: number | 'self'): string {
  const status = readFileSync(`/proc/${pid}/status`, 'latin1');
  const m = /^Cpus_allowed_list:\s+(\S+)/m.exec(status);
  return m === null ? 'unknown' : m[1];
}

/** Soft limit on open files of a process (from /proc/PID/limits); Infinity when unlimited. */
export function openFilesLimit(pid: number | 'self'): number {
  const limits = readFileSync(`/proc/${pid}/limits`, 'latin1');
  const m = /^Max open files\s+(\S+)/m.exec(limits);
  if (m === null) return Infinity;
  return m[1] === 'unlimited' ? Infinity : Number(m[1]);
}

/** Number of file descriptors a process has open right now. */
export function openFileCount(pid: number | 'self'): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

interface MachineTicks {
  busy: number;
  total: number;
}

function machineTicks(): MachineTicks {
  const line = readFileSync('/proc/stat', 'latin1').split('\n', 1)[0];
  // cpu user nice system idle iowait irq softirq steal guest guest_nice; guest time is already inside user.
  const v = line.trim().split(/\s+/).slice(1, 9).map(Number);
  const idle = v[3] + v[4];
  const busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
  return { busy, total: busy + idle };
}

/** Process CPU usage over a window, measured from /proc so that it includes every thread (GC, libuv pool). */
export class CpuWindow {
  private readonly startTicks: number;
  private readonly startMs: number;

  /** `ticksOf`: the whole process by default, or `mainThreadCpuTicks` for its event loop alone. */
  constructor(
    private readonly pid: number,
    private readonly ticksOf: (pid: number) => number = processCpuTicks,
  ) {
    this.startTicks = ticksOf(pid);
    this.startMs = performance.now();
  }

  /** CPU seconds used since the window opened, and the wall seconds it spanned. */
  read(): { cpuSeconds: number; wallSeconds: number } {
    const ticks = this.ticksOf(this.pid) - this.startTicks;
    return { cpuSeconds: ticks / clockTicksPerSecond(), wallSeconds: (performance.now() - this.startMs) / 1000 };
  }
}

/**
 * CPU used by everything except the listed processes, in cores (1.0 = one core fully busy), over the time
 * since construction. The server under test and the generator are excluded because their own cost is what
 * is measured; what remains is other work that competes for the same two cores.
 */
export class OtherLoadWindow {
  private readonly machine0 = machineTicks();
  private readonly excluded0: number;
  private readonly startMs = performance.now();

  constructor(private readonly excludePids: number[]) {
    this.excluded0 = this.excludedTicks();
  }

  readCores(): number {
    const busy = machineTicks().busy - this.machine0.busy;
    const excluded = this.excludedTicks() - this.excluded0;
    const seconds = (performance.now() - this.startMs) / 1000;
    return Math.max(0, busy - excluded) / clockTicksPerSecond() / seconds;
  }

  private excludedTicks(): number {
    let sum = 0;
    for (const pid of this.excludePids) sum += processCpuTicks(pid);
    return sum;
  }
}

/** Other load (see OtherLoadWindow) sampled over `ms`. */
export async function otherLoadCores(excludePids: number[], ms: number): Promise<number> {
  const window = new OtherLoadWindow(excludePids);
  await new Promise<void>((resolve) => setTimeout(resolve, ms));
  return window.readCores();
}
