/**
 * `npm run bench`: starts each target server fresh per scenario (pinned to CPU 0), checks that the machine
 * is quiet, runs the scenario from this generator process (pinned to CPU 1), prints one JSON line per
 * result and a markdown table at the end. Everything started is stopped by PID on every exit path.
 */
import { resolve } from 'node:path';
import { parseOptions, USAGE, UsageError, type BenchOptions, type TargetName } from './options';
import { canPin, GENERATOR_CPU, reexecOnGeneratorCpu, SERVER_CPU } from './pin-cpu';
import { sleep } from './load-patterns';
import { OTHER_LOAD_MAX_CORES } from './measure-window';
import { openFilesLimit, otherLoadCores, processAllowedCpus } from './proc-stats';
import { machineSummary, markdownTable, printOutcome, type Outcome } from './report';
import type { Scenario, ScenarioContext } from './scenario';
import { SCENARIOS } from './scenario-list';
import {
  externalServer,
  killAllServersSync,
  startHerald,
  startReference,
  startSoketi,
  type LaunchOptions,
  type ServerUnderTest,
} from './server-process';
import { checkSigningVectors } from './signing';

/** 1 s samples (1 s apart) before measuring anyway; a smoke run only proves the path and does not wait. */
const QUIET_ATTEMPTS = { full: 8, smoke: 1 };
/** Upper bound on one scenario including setup, so a hung server cannot hang the run. */
const SCENARIO_LIMIT_MS = { full: 240_000, smoke: 60_000 };
/** Sockets the largest scenarios hold at once (idle-memory, connect-rate). */
const LARGEST_FLEET = 19_500;

/** Teardowns of the scenario that is running, for the SIGINT path. */
const activeCleanups: (() => void | Promise<void>)[] = [];
/** Upper bound on one teardown (e.g. stopping a node and deleting its Redis keys). */
const CLEANUP_LIMIT_MS = 20_000;

function log(message: string): void {
  process.stderr.write(`[bench] ${message}\n`);
}

async function main(): Promise<number> {
  const opts = parseOptions(process.argv.slice(2));
  if (opts.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (opts.list) {
    for (const s of SCENARIOS) process.stdout.write(`${s.name.padEnd(16)} ${s.skipped ? `[${s.skipped}] ` : ''}${s.summary}\n`);
    return 0;
  }
  // Before re-executing, so a mistyped name fails at once and only once.
  const scenarios = selectScenarios(opts);
  const pin = opts.pin && canPin();
  if (opts.pin && !pin) log('cannot pin (needs taskset and 2 CPUs): server and generator share CPUs, figures are rougher');
  if (pin) {
    const child = reexecOnGeneratorCpu();
    if (child !== null) return child;
  }
  installExitHandlers();
  checkSigningVectors();

  const limit = openFilesLimit('self');
  if (!opts.smoke && limit < LARGEST_FLEET * opts.scale + 200) {
    log(
      `WARNING: ulimit -n is ${limit}; idle-memory and connect-rate hold ~${Math.round(LARGEST_FLEET * opts.scale)} ` +
        `sockets and will fail. Raise it (ulimit -n 20000) or pass --scale.`,
    );
  }
  log(`machine: ${machineSummary()}; generator on CPUs ${processAllowedCpus('self')}`);

  const launch: LaunchOptions = {
    repoRoot: resolve(__dirname, '../..'),
    soketiScript: opts.soketiScript,
    cpus: pin ? SERVER_CPU : null,
  };
  const targets: string[] = opts.external !== null ? ['external'] : opts.targets;
  const scale = opts.smoke ? 'smoke' : opts.scale === 1 ? 'full' : `x${opts.scale}`;
  const outcomes: Outcome[] = [];
  for (const scenario of scenarios) {
    for (let round = 1; round <= opts.repeat; round++) {
      for (const target of targets) {
        const skipped = scenario.skipped ?? scenario.skipTargets?.[target];
        if (skipped !== undefined && round > 1) continue;
        const outcome =
          skipped !== undefined
            ? { scenario: scenario.name, target, status: 'skipped' as const, figures: {}, notes: [], reason: skipped }
            : await runScenario(scenario, target, opts, launch);
        if (opts.repeat > 1 && outcome.status !== 'skipped') outcome.round = round;
        outcomes.push(outcome);
        printOutcome(outcome, scale);
      }
    }
  }

  const command = `npm run bench -- ${process.argv.slice(2).join(' ')}`.trim();
  const serverPlacement = opts.external !== null ? 'external server, not pinned by the harness' : `server on CPU ${pin ? SERVER_CPU : 'any'}`;
  process.stdout.write(
    `\n${machineSummary()}\nCommand: \`${command}\` (${scale} scale; ${serverPlacement}, ` +
      `generator on CPU ${pin ? GENERATOR_CPU : 'any'})\n\n${markdownTable(scenarios, targets, outcomes)}\n`,
  );
  return outcomes.some((o) => o.status === 'error') ? 1 : 0;
}

function selectScenarios(opts: BenchOptions): readonly Scenario[] {
  if (opts.scenarios.length === 0) return SCENARIOS;
  const unknown = opts.scenarios.filter((n) => !SCENARIOS.some((s) => s.name === n));
  if (unknown.length > 0) {
    throw new UsageError(`unknown scenario ${unknown.join(', ')}; known: ${SCENARIOS.map((s) => s.name).join(', ')}`);
  }
  return SCENARIOS.filter((s) => opts.scenarios.includes(s.name));
}

/** Entry point of one scenario on one target: its failure is reported and the run goes on. */
async function runScenario(scenario: Scenario, target: string, opts: BenchOptions, launch: LaunchOptions): Promise<Outcome> {
  const say = (m: string): void => log(`${scenario.name} @ ${target}: ${m}`);
  let server: ServerUnderTest | null = null;
  activeCleanups.length = 0;
  try {
    server = await startServer(target, opts, launch, scenario);
    if (server.pid !== null) say(`server pid ${server.pid} on CPUs ${processAllowedCpus(server.pid)}`);
    const otherLoad = await waitForQuietMachine(server.pid, opts.smoke ? QUIET_ATTEMPTS.smoke : QUIET_ATTEMPTS.full, say);
    const ctx: ScenarioContext = {
      server,
      target,
      startNode: async (node) => {
        if (opts.external !== null) throw new Error('an external target cannot start more nodes');
        const extra =
          (target as TargetName) === 'soketi' ? await startSoketi(launch, node.soketiRedis ?? null) : await startHerald(launch, node.herald);
        activeCleanups.push(() => extra.stop());
        return extra;
      },
      smoke: opts.smoke,
      count: (full, smoke, min = 1) => (opts.smoke ? smoke : Math.max(min, Math.round(full * opts.scale))),
      durationMs: (fullS, smokeS) => 1000 * (opts.smoke ? smokeS : (opts.seconds ?? fullS)),
      warmUpMs: (fullS, smokeS) => 1000 * (opts.smoke ? smokeS : fullS),
      onCleanup: (fn) => activeCleanups.push(fn),
      log: say,
    };
    const limitMs = opts.smoke ? SCENARIO_LIMIT_MS.smoke : SCENARIO_LIMIT_MS.full;
    const result = await withTimeout(scenario.run(ctx), limitMs, `${scenario.name} did not finish within ${limitMs / 1000} s`);
    const notes = [...(result.notes ?? [])];
    if (otherLoad > OTHER_LOAD_MAX_CORES) notes.push(`machine was busy before the run (${otherLoad.toFixed(2)} cores of other load)`);
    return {
      scenario: scenario.name,
      target,
      status: 'ok',
      figures: { ...result.figures, otherLoadBeforeCores: Math.round(otherLoad * 100) / 100 },
      notes,
    };
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    say(`FAILED: ${reason}`);
    return { scenario: scenario.name, target, status: 'error', figures: {}, notes: [], reason };
  } finally {
    for (const fn of activeCleanups.splice(0).reverse()) {
      try {
        await withTimeout(Promise.resolve(fn()), CLEANUP_LIMIT_MS, `a clean-up did not finish within ${CLEANUP_LIMIT_MS / 1000} s`);
      } catch (err) {
        say(`clean-up failed: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    if (server !== null) await server.stop();
    // Whatever a failed start left behind goes too: one server at a time, so anything left is stray.
    killAllServersSync();
  }
}

function startServer(target: string, opts: BenchOptions, launch: LaunchOptions, scenario: Scenario): Promise<ServerUnderTest> {
  if (opts.external !== null) {
    const { host, port, pid } = opts.external;
    return Promise.resolve(externalServer(host, port, opts.app, pid));
  }
  const name = target as TargetName;
  const placed = launch.cpus !== null && scenario.serverCpus !== undefined ? { ...launch, cpus: scenario.serverCpus } : launch;
  if (name === 'soketi') return startSoketi(placed);
  if (name === 'reference') return startReference(placed);
  return startHerald(placed, scenario.heraldConfig);
}

/**
 * Samples other load for 1 s at a time, up to `attempts` times, until it is below OTHER_LOAD_MAX_CORES.
 * The server and the generator are excluded: their idle cost is part of the measurement. Returns the last
 * sample; a busy machine is reported, not fatal.
 */
async function waitForQuietMachine(
  serverPid: number | null,
  attempts: number,
  say: (m: string) => void,
): Promise<number> {
  const exclude = serverPid === null ? [process.pid] : [process.pid, serverPid];
  let load = 0;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    load = await otherLoadCores(exclude, 1000);
    if (load <= OTHER_LOAD_MAX_CORES) return load;
    say(`machine busy: ${load.toFixed(2)} cores of other load (attempt ${attempt}/${attempts})`);
    if (attempt < attempts) await sleep(1000);
  }
  say(`WARNING: measuring on a busy machine (${load.toFixed(2)} cores of other load)`);
  return load;
}

function withTimeout<T>(work: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

function installExitHandlers(): void {
  let interrupted = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    // Ctrl-C may arrive twice (from the terminal and forwarded by the pinning parent); clean up once.
    if (interrupted) return;
    interrupted = true;
    log(`${signal}: stopping sockets and servers`);
    // Only the synchronous part of each teardown runs before exit (closing sockets); the processes and
    // anything registered with onLastResort are dealt with by killAllServersSync.
    for (const fn of activeCleanups.splice(0).reverse()) {
      try {
        const pending = fn();
        if (pending instanceof Promise) pending.catch(() => undefined);
      } catch (err) {
        log(`clean-up failed: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    killAllServersSync();
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // Last resort for crashes: no server outlives the harness.
  process.on('exit', killAllServersSync);
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    const text = err instanceof UsageError ? err.message : err instanceof Error ? (err.stack ?? err.message) : String(err);
    log(`error: ${text}`);
    killAllServersSync();
    process.exitCode = 1;
  },
);
