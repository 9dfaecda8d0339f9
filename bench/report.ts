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
}

/** Prints the JSON line of one outcome. */
export function printOutcome(o: Outcome, scale: string): void {
  const line: Record<string, unknown> =
    o.status === 'skipped'
      ? { scenario: o.scenario, target: o.target, skipped: o.reason }
      : o.status === 'error'
        ? { scenario: o.scenario, target: o.target, scale, error: o.reason }
        : { scenario: o.scenario, target: o.target, scale, ...o.figures };
  if (o.notes.length > 0) line.notes = o.notes;
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

/** The machine line that belongs above every results table. */
export function machineSummary(): string {
  return `${cpus().length} CPUs, ${cpuModel()}, Node ${process.version}, ${new Date().toISOString()}`;
}

/** Markdown table: one row per scenario headline figure, one column per target. */
export function markdownTable(scenarios: readonly Scenario[], targets: string[], outcomes: Outcome[]): string {
  const find = (scenario: string, target: string): Outcome | undefined =>
    outcomes.find((o) => o.scenario === scenario && o.target === target);
  const lines = [`| scenario | figure | ${targets.join(' | ')} |`, `|---|---|${targets.map(() => '---:').join('|')}|`];
  for (const s of scenarios) {
    if (!targets.some((t) => find(s.name, t) !== undefined)) continue;
    s.headline.forEach((h, i) => {
      const cells = targets.map((t) => {
        const o = find(s.name, t);
        if (o === undefined) return '';
        if (o.status === 'skipped') return i === 0 ? `skipped (${o.reason})` : '';
        if (o.status === 'error') return i === 0 ? 'error' : '';
        return formatFigure(o.figures[h.key]);
      });
      lines.push(`| ${i === 0 ? `\`${s.name}\`` : ''} | ${h.label} | ${cells.join(' | ')} |`);
    });
  }
  return lines.join('\n');
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
