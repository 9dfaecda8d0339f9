/**
 * The contract between the runner and a scenario. A scenario gets a freshly started server and a context,
 * drives load, and returns named figures; the runner prints them, tabulates the headline ones and cleans
 * up (servers, sockets, REST agents) whatever happens.
 */
import type { ServerUnderTest } from './server-process';

export type Figure = number | string | boolean | null;

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

export interface ScenarioContext {
  server: ServerUnderTest;
  /** True for `--smoke`: tiny scale, proves the path works. */
  smoke: boolean;
  /** `full` scaled by `--scale` (at least `min`), or `smoke` when smoke-testing. */
  count(full: number, smoke: number, min?: number): number;
  /** Measured window length in ms: `fullS` (or `--seconds`) / `smokeS`. */
  durationMs(fullS: number, smokeS: number): number;
  /** Registers a teardown the runner calls after the scenario (also on error), in reverse order. */
  onCleanup(fn: () => void): void;
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
  run(ctx: ScenarioContext): Promise<ScenarioResult>;
}
