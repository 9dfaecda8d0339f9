/** Command-line options of `npm run bench -- …`. */
import { BENCH_APP } from './server-process';
import type { AppCredentials } from './signing';

export type TargetName = 'herald' | 'soketi' | 'reference';

const TARGETS: readonly TargetName[] = ['herald', 'soketi', 'reference'];

/** A mistake on the command line: reported as its message alone, with the usage where it helps. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export interface BenchOptions {
  help: boolean;
  list: boolean;
  /** Scenario names to run; empty = all. */
  scenarios: string[];
  smoke: boolean;
  /** Servers the harness starts itself (ignored when `external` is set). */
  targets: TargetName[];
  /** An already running server to measure instead of starting one. */
  external: { host: string; port: number; pid: number | null } | null;
  app: AppCredentials;
  /** Multiplier on full-run socket counts. */
  scale: number;
  /** Overrides the measured window of every full-run scenario, in seconds. */
  seconds: number | null;
  /** Runs of each scenario per target, interleaved target by target; the table shows medians. */
  repeat: number;
  pin: boolean;
  soketiScript: string;
}

export const USAGE = `usage: npm run bench -- [options]
  --scenario NAME[,NAME]   run only these scenarios (repeatable); default all
  --list                   list scenarios and exit
  --smoke                  every scenario at tiny scale (~50 sockets, 2 s) to prove the harness works
  --target T               servers to start and measure: herald (default), soketi, reference, a comma list,
                           both (herald,soketi) or all (herald,soketi,reference; reference = a bare ws
                           broadcast server, the ceiling for Node, in the broadcast scenarios only)
  --host H --port P        measure an already running server on loopback instead of starting one
  --pid PID                its PID, for CPU/RSS figures (else those are null)
  --app-id ID --key K --secret S   app credentials (default 1 / bench-key / bench-secret)
  --scale F                multiply full-run socket counts by F (e.g. 0.5)
  --seconds N              measured window of each full-run scenario, in seconds
  --repeat N               run each scenario N times per target, alternating targets; the table shows
                           each figure's median and (min–max). This VM's speed drifts by tens of % over
                           minutes, so compare servers on interleaved repeats, not on single runs
  --no-pin                 do not pin server (CPU 0) and generator (CPU 1) with taskset
  --soketi-sh PATH         peer script (default /work/shared/peers/soketi/soketi.sh)
`;

export function parseOptions(argv: string[]): BenchOptions {
  const o: BenchOptions = {
    help: false,
    list: false,
    scenarios: [],
    smoke: false,
    targets: ['herald'],
    external: null,
    app: { ...BENCH_APP },
    scale: 1,
    seconds: null,
    repeat: 1,
    pin: true,
    soketiScript: '/work/shared/peers/soketi/soketi.sh',
  };
  let host = '127.0.0.1';
  let port: number | null = null;
  let pid: number | null = null;
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new UsageError(`${flag} needs a value\n${USAGE}`);
      return v;
    };
    switch (flag) {
      case '--help':
      case '-h':
        o.help = true;
        break;
      case '--list':
        o.list = true;
        break;
      case '--scenario':
        o.scenarios.push(...value().split(',').filter((s) => s !== ''));
        break;
      case '--smoke':
        o.smoke = true;
        break;
      case '--target': {
        const t = value();
        if (t === 'both') o.targets = ['herald', 'soketi'];
        else if (t === 'all') o.targets = [...TARGETS];
        else {
          const names = t.split(',').filter((n) => n !== '');
          const bad = names.find((n) => !(TARGETS as readonly string[]).includes(n));
          if (bad !== undefined || names.length === 0) throw new UsageError(`--target takes herald, soketi, reference (comma-separated), both or all, not ${t}`);
          o.targets = [...new Set(names as TargetName[])];
        }
        break;
      }
      case '--host':
        host = value();
        break;
      case '--port':
        port = positiveInt(flag, value());
        break;
      case '--pid':
        pid = positiveInt(flag, value());
        break;
      case '--app-id':
        o.app.appId = value();
        break;
      case '--key':
        o.app.key = value();
        break;
      case '--secret':
        o.app.secret = value();
        break;
      case '--scale':
        o.scale = positiveNumber(flag, value());
        break;
      case '--seconds':
        o.seconds = positiveNumber(flag, value());
        break;
      case '--repeat':
        o.repeat = positiveInt(flag, value());
        break;
      case '--no-pin':
        o.pin = false;
        break;
      case '--soketi-sh':
        o.soketiScript = value();
        break;
      default:
        throw new UsageError(`unknown option ${flag}\n${USAGE}`);
    }
  }
  if (port !== null) {
    // The generator opens thousands of sockets from 127.0.0.x source addresses: loopback targets only.
    if (!/^127\.\d+\.\d+\.\d+$/.test(host)) throw new UsageError(`--host must be an IPv4 loopback address, not ${host}`);
    o.external = { host, port, pid };
  } else if (host !== '127.0.0.1' || pid !== null) {
    throw new UsageError('--host and --pid describe an external server and need --port');
  }
  return o;
}

function positiveNumber(flag: string, v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new UsageError(`${flag} needs a positive number, not ${v}`);
  return n;
}

function positiveInt(flag: string, v: string): number {
  const n = positiveNumber(flag, v);
  if (!Number.isInteger(n)) throw new UsageError(`${flag} needs an integer, not ${v}`);
  return n;
}
