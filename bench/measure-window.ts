/**
 * The measured window of a scenario: server CPU (from /proc, all threads), generator CPU (to show when the
 * load generator rather than the server was the limit) and wall time.
 */
import { CpuWindow, OtherLoadWindow } from './proc-stats';

/** Generator CPU above this share of its core means the generator, not the server, may be the bottleneck. */
const GENERATOR_SATURATED_PCT = 90;
/** Other load above this (in cores) during the window means the figures were disturbed. */
export const OTHER_LOAD_MAX_CORES = 0.15;

export interface WindowFigures {
  wallS: number;
  /** Server CPU seconds (utime + stime), null when the server PID is unknown. */
  serverCpuS: number | null;
  /** Server CPU as % of one core over the window. */
  serverCpuPct: number | null;
  generatorCpuPct: number;
  /** CPU used by other processes during the window, in cores: how disturbed the figures are. */
  otherLoadCores: number;
}

export class MeasureWindow {
  private readonly server: CpuWindow | null;
  private readonly generator = process.cpuUsage();
  private readonly startMs = performance.now();
  private readonly other: OtherLoadWindow;

  /** `alsoPartOfTheRun`: helper processes of the harness (e.g. a local push endpoint), not "other load". */
  constructor(pid: number | null, alsoPartOfTheRun: number[] = []) {
    this.server = pid === null ? null : new CpuWindow(pid);
    this.other = new OtherLoadWindow([process.pid, ...(pid === null ? [] : [pid]), ...alsoPartOfTheRun]);
  }

  /** Start of the window on the generator clock, in µs (same clock as payload timestamps). */
  get startUs(): number {
    return Math.round(this.startMs * 1000);
  }

  close(): WindowFigures {
    const wallS = (performance.now() - this.startMs) / 1000;
    const gen = process.cpuUsage(this.generator);
    const serverCpuS = this.server === null ? null : this.server.read().cpuSeconds;
    return {
      wallS: round(wallS, 3),
      serverCpuS: serverCpuS === null ? null : round(serverCpuS, 2),
      serverCpuPct: serverCpuS === null ? null : round((100 * serverCpuS) / wallS, 1),
      generatorCpuPct: round((100 * (gen.user + gen.system)) / 1e6 / wallS, 1),
      otherLoadCores: round(this.other.readCores(), 2),
    };
  }
}

/** Notes that qualify the figures of a window. */
export function windowNotes(w: WindowFigures): string[] {
  const notes: string[] = [];
  if (w.generatorCpuPct >= GENERATOR_SATURATED_PCT) {
    notes.push(`generator at ${w.generatorCpuPct}% of its core: the figure may be generator-bound`);
  }
  if (w.otherLoadCores > OTHER_LOAD_MAX_CORES) {
    notes.push(`other processes used ${w.otherLoadCores} cores during the window: figures disturbed`);
  }
  return notes;
}

/** Server CPU per unit of work in µs (e.g. per delivery), null when unknown or nothing was done. */
export function cpuPerUnitUs(serverCpuS: number | null, units: number): number | null {
  return serverCpuS === null || units === 0 ? null : round((serverCpuS * 1e6) / units, 2);
}

export function round(v: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}
