/**
 * Output: one JSON line per result on stdout as it completes (for machines and CI logs), and at the end a
 * markdown table with the headline figures of each scenario side by side per target (for RESULTS.md).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import type { Figure, Scenario } from './scenario';

export interface Outcome {
  scenario: string;
  target: string;
  status: 'ok' | 'skipped' | 'error';
  figures: Record<string, Figure>;
  notes: string[];
  /** Why it was skipped, or what failed. */
  reason?: string;
  /** Which of `--repeat N` runs this was (1-based); absent for a single run. */
  round?: number;
}

/** Prints the JSON line of one outcome. */
export function printOutcome(o: Outcome, scale: string): void {
  const line: Record<string, unknown> =
    o.status === 'skipped'
      ? { scenario: o.scenario, target: o.target, skipped: o.reason }
      : o.status === 'error'
        ? { scenario: o.scenario, target: o.target, scale, ...(o.round !== undefined ? { round: o.round } : {}), error: o.reason }
        : { scenario: o.scenario, target: o.target, scale, ...(o.round !== undefined ? { round: o.round } : {}), ...o.figures };
  if (o.notes.length > 0) line.notes = o.notes;
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

/** The machine line that belongs above every results table. */
export function machineSummary(): string {
  return `${cpus().length} CPUs, ${cpuModel()}, Node ${process.version}, ${new Date().toISOString()}`;
}

/**
 * Markdown table: one row per scenario headline figure, one column per target. With repeated runs a cell
 * is the median of the successful runs with their range, `median (min–max)`.
 */
export function markdownTable(scenarios: readonly Scenario[], targets: string[], outcomes: Outcome[]): string {
  const runs = (scenario: string, target: string): Outcome[] => outcomes.filter((o) => o.scenario === scenario && o.target === target);
  const lines = [`| scenario | figure | ${targets.join(' | ')} |`, `|---|---|${targets.map(() => '---:').join('|')}|`];
  for (const s of scenarios) {
    if (!targets.some((t) => runs(s.name, t).length > 0)) continue;
    s.headline.forEach((h, i) => {
      const cells = targets.map((t) => {
        const all = runs(s.name, t);
        if (all.length === 0) return '';
        if (all[0].status === 'skipped') return i === 0 ? `skipped (${all[0].reason})` : '';
        const ok = all.filter((o) => o.status === 'ok');
        const failed = all.length - ok.length;
        const failNote = i === 0 && failed > 0 ? `error in ${failed} of ${all.length}` : '';
        if (ok.length === 0) return failNote;
        const cell = ok.length === 1 ? formatFigure(ok[0].figures[h.key]) : medianCell(ok.map((o) => o.figures[h.key]));
        return failNote === '' ? cell : `${cell}; ${failNote}`;
      });
      lines.push(`| ${i === 0 ? `\`${s.name}\`` : ''} | ${h.label} | ${cells.join(' | ')} |`);
    });
  }
  return lines.join('\n');
}

/** `median (min–max)` of numeric figures; anything else (or a mix) is listed as it is. */
function medianCell(values: (Figure | undefined)[]): string {
  const nums = values.filter((v): v is number => typeof v === 'number').sort((a, b) => a - b);
  if (nums.length !== values.length) return values.map(formatFigure).join(' / ');
  const mid = nums.length >> 1;
  const median = nums.length % 2 === 1 ? nums[mid] : (nums[mid - 1] + nums[mid]) / 2;
  return `${formatFigure(Math.round(median * 100) / 100)} (${formatFigure(nums[0])}–${formatFigure(nums[nums.length - 1])})`;
}

function formatFigure(v: Figure | undefined): string {
  if (v === undefined || v === null) return 'n/a';
  if (typeof v !== 'number') return String(v);
  if (Math.abs(v) >= 1000) return Math.round(v).toLocaleString('en-US');
  return String(v);
}

function cpuModel(): string {
  const lscpu = execFileSync('sh', ['-c', 'lscpu 2>/dev/null || true'], { encoding: 'utf8' });
  const fromLscpu = /^Model name:\s*(.+)$/m.exec(lscpu);
  if (fromLscpu !== null) return fromLscpu[1].trim();
  const fromProc = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
  return fromProc === null ? 'unknown CPU' : fromProc[1].trim();
}
