/**
 * The contract between the runner and a scenario. A scenario gets a freshly started server and a context,
 * drives load, and returns named figures; the runner prints them, tabulates the headline ones and cleans
 * up (servers, sockets, REST agents) whatever happens.
 */
import type { HeraldExtraConfig, ServerUnderTest } from './server-process';

export type Figure = number | string | boolean | null;

/**
 * Why the reference server sits out a scenario: it only broadcasts (the issue gives it figures for the
 * fan-out, memory and connect rows alone); signed REST, presence, push and clustering are not in it.
 */
export const REFERENCE_SKIP = 'the reference server only broadcasts (no signed REST, presence, push or cluster)';

export interface ScenarioResult {
  /** Every figure measured, printed in the JSON line. */
  figures: Record<string, Figure>;
  /** Human-readable notes (e.g. "generator saturated"), printed in the JSON line and under the table. */
  notes?: string[];
}

/** One figure shown in the markdown table. */
export interface Headline {
  key: string;
  label: string;
}

/** Extra nodes a scenario may start next to `server` (same kind, same CPU pinning). */
export interface NodeOptions {
  /** Herald: top-level config merged into the bench config (e.g. `redis`, `redisPrefix`). */
  herald?: HeraldExtraConfig;
  /** soketi: join a cluster through Redis pub/sub on this port with this channel prefix. */
  soketiRedis?: { port: number; prefix: string };
}

export interface ScenarioContext {
  server: ServerUnderTest;
  /** `herald`, `soketi` or `external`. */
  target: string;
  /**
   * Starts one more server of the target's kind, pinned like `server`; it is stopped by PID after the
   * scenario (also on error). Not available for an external target.
   */
  startNode(opts: NodeOptions): Promise<ServerUnderTest>;
  /** True for `--smoke`: tiny scale, proves the path works. */
  smoke: boolean;
  /** `full` scaled by `--scale` (at least `min`), or `smoke` when smoke-testing. */
  count(full: number, smoke: number, min?: number): number;
  /** Measured window length in ms: `fullS` (or `--seconds`) / `smokeS`. */
  durationMs(fullS: number, smokeS: number): number;
  /** A warm-up's length in ms: `fullS` / `smokeS` (`--seconds` sets the window, not the warm-up). */
  warmUpMs(fullS: number, smokeS: number): number;
  /**
   * Registers a teardown the runner calls after the scenario (also on error), in reverse order, awaiting
   * each. On SIGINT they are called without waiting, before every process is killed.
   */
  onCleanup(fn: () => void | Promise<void>): void;
  /** Progress line on stderr. */
  log(message: string): void;
}

export interface Scenario {
  name: string;
  /** One line: what is measured. */
  summary: string;
  headline: Headline[];
  /** When set, the scenario is not run and prints `{"scenario":…,"skipped":…}`; e.g. "needs web push". */
  skipped?: string;
  /** Per target (`herald`, `soketi`, `external`): why the scenario does not apply to it (printed as skipped). */
  skipTargets?: Partial<Record<string, string>>;
  /** Top-level config merged into the bench config of the Herald the runner starts for this scenario. */
  heraldConfig?: HeraldExtraConfig;
  /**
   * CPUs the server may use when the harness pins (taskset's list); unset: the server's one CPU. For the
   * figures that need a second core, such as push encryption on a thread.
   */
  serverCpus?: string;
  run(ctx: ScenarioContext): Promise<ScenarioResult>;
}
