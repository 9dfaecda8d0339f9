/**
 * Builds the configuration from (in order of precedence) environment variables, the JSON file named by
 * `HERALD_CONFIG`, and the schema's defaults. Invalid input stops start-up with a message naming the field.
 */
import { randomBytes, randomInt } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import Ajv from 'ajv';
import { appSchema, configSchema } from './schema';
import { redisSpec } from '../cluster/redis-connection';
import { resolvePushConfig } from '../push/push-config';
import type { AppOptions, HeraldOptions } from './Options';

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

const ajv = new Ajv({ useDefaults: true, allErrors: true, strict: false });
const validateConfig = ajv.compile(configSchema);
const validateApp = ajv.compile(appSchema);

function describeErrors(errors: typeof validateConfig.errors, root: string): string {
  return (errors ?? [])
    .map((e) => {
      const field = `${root}${e.instancePath.replace(/\//g, '.')}`;
      const extra = e.keyword === 'additionalProperties' ? ` '${String((e.params as { additionalProperty: string }).additionalProperty)}'` : '';
      return `${field || root} ${e.message ?? 'is invalid'}${extra}`;
    })
    .join('; ');
}

function intFromEnv(env: NodeJS.ProcessEnv, name: string): number | undefined {
  const v = env[name];
  if (v === undefined || v === '') return undefined;
  if (!/^\d+$/.test(v)) throw new ConfigError(`${name} must be a whole number, got '${v}'`);
  return Number(v);
}

/** Where a generated default app is remembered between runs. */
export const DEFAULT_APP_FILE = 'default-app.json';

/**
 * The default app: from `HERALD_APP_ID/KEY/SECRET` where set, otherwise generated once and kept in the data
 * directory so clients keep working across restarts. Generated ids are numeric, as Pusher's are: some
 * server libraries (pusher-http-python) refuse any other.
 */
function defaultApp(env: NodeJS.ProcessEnv, dataDir: string): { app: Record<string, unknown>; generated: boolean } {
  const file = join(dataDir, DEFAULT_APP_FILE);
  let stored: Record<string, string> | undefined;
  if (existsSync(file)) {
    try {
      stored = JSON.parse(readFileSync(file, 'utf8')) as Record<string, string>;
    } catch (err) {
      throw new ConfigError(`${file} is not valid JSON (${(err as Error).message}); delete it to generate new credentials`);
    }
  }
  const generated = !stored && !(env.HERALD_APP_ID && env.HERALD_APP_KEY && env.HERALD_APP_SECRET);
  const app = {
    id: env.HERALD_APP_ID ?? stored?.id ?? String(randomInt(100000, 999999999)),
    key: env.HERALD_APP_KEY ?? stored?.key ?? randomBytes(10).toString('hex'),
    secret: env.HERALD_APP_SECRET ?? stored?.secret ?? randomBytes(10).toString('hex'),
  };
  // Settings of the default app, so the zero-config node can be tried with client events on.
  const settings: Record<string, unknown> = {};
  if (env.HERALD_APP_CLIENT_EVENTS !== undefined) settings.clientEvents = env.HERALD_APP_CLIENT_EVENTS === 'true';
  if (!stored) {
    mkdirSync(dataDir, { recursive: true });
    writeFileSync(file, JSON.stringify(app, null, 2) + '\n', { mode: 0o600 });
  }
  return { app: { ...app, ...settings }, generated };
}

export interface LoadedOptions {
  options: HeraldOptions;
  /** True when the default app's credentials were generated in this run. */
  generatedApp: boolean;
  /** True when the default app (rather than a config file's apps) is served. */
  usingDefaultApp: boolean;
}

/** Reads, merges and validates configuration; throws ConfigError naming the offending field. */
export function loadOptions(env: NodeJS.ProcessEnv = process.env, overrides: Partial<HeraldOptions> = {}): LoadedOptions {
  let fileConfig: Record<string, unknown> = {};
  if (env.HERALD_CONFIG) {
    const path = resolve(env.HERALD_CONFIG);
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      throw new ConfigError(`HERALD_CONFIG: cannot read ${path}: ${(err as Error).message}`);
    }
    try {
      fileConfig = JSON.parse(text) as Record<string, unknown>;
    } catch (err) {
      throw new ConfigError(`HERALD_CONFIG: ${path} is not valid JSON: ${(err as Error).message}`);
    }
  }
  const merged: Record<string, unknown> = { ...fileConfig };
  const port = intFromEnv(env, 'HERALD_PORT');
  if (port !== undefined) merged.port = port;
  if (env.HERALD_HOST) merged.host = env.HERALD_HOST;
  if (env.HERALD_DATA_DIR) merged.dataDir = env.HERALD_DATA_DIR;
  if (env.HERALD_LOG_LEVEL) merged.logLevel = env.HERALD_LOG_LEVEL;
  if (env.HERALD_TRUST_PROXY) {
    const v = env.HERALD_TRUST_PROXY.trim();
    merged.trustProxy = v === 'true' ? true : v === 'false' ? false : v.split(',').map((x) => x.trim()).filter(Boolean);
  }
  if (env.HERALD_REDIS_URL) merged.redis = env.HERALD_REDIS_URL;
  if (env.HERALD_REDIS_PREFIX) merged.redisPrefix = env.HERALD_REDIS_PREFIX;
  if (env.HERALD_ADMIN_TOKEN) merged.adminToken = env.HERALD_ADMIN_TOKEN;
  if (env.HERALD_TLS_CERT || env.HERALD_TLS_KEY) merged.tls = { cert: env.HERALD_TLS_CERT, key: env.HERALD_TLS_KEY };
  if (env.HERALD_PUSH_SUBJECT) merged.push = { ...(merged.push as Record<string, unknown> | undefined), subject: env.HERALD_PUSH_SUBJECT };
  Object.assign(merged, overrides);

  if (!validateConfig(merged)) {
    throw new ConfigError(`Invalid configuration: ${describeErrors(validateConfig.errors, 'config')}`);
  }
  const options = merged as unknown as HeraldOptions;
  options.dataDir = resolve(options.dataDir);
  if (options.redis !== undefined) {
    try {
      redisSpec(options.redis);
    } catch (err) {
      throw new ConfigError(`Invalid configuration: config.redis: ${(err as Error).message}`);
    }
  }

  let generatedApp = false;
  let usingDefaultApp = false;
  if (!options.apps || options.apps.length === 0) {
    const { app, generated } = defaultApp(env, options.dataDir);
    if (!validateApp(app)) {
      throw new ConfigError(`Invalid default app (HERALD_APP_*): ${describeErrors(validateApp.errors, 'app')}`);
    }
    options.apps = [app as unknown as AppOptions];
    generatedApp = generated;
    usingDefaultApp = true;
  }
  checkUnique(options.apps);
  try {
    resolvePushConfig(options);
  } catch (err) {
    throw new ConfigError(`Invalid configuration: ${(err as Error).message}`);
  }
  return { options, generatedApp, usingDefaultApp };
}

function checkUnique(apps: AppOptions[]): void {
  const ids = new Set<string>();
  const keys = new Set<string>();
  apps.forEach((a, i) => {
    if (ids.has(a.id)) throw new ConfigError(`Invalid configuration: config.apps.${i}.id '${a.id}' is used twice`);
    if (keys.has(a.key)) throw new ConfigError(`Invalid configuration: config.apps.${i}.key '${a.key}' is used twice`);
    ids.add(a.id);
    keys.add(a.key);
  });
}

/** Validates one app object (used by tests and by programmatic start-up). */
export function normalizeApp(app: Partial<AppOptions> & Pick<AppOptions, 'id' | 'key' | 'secret'>): AppOptions {
  const copy = JSON.parse(JSON.stringify(app)) as Record<string, unknown>;
  if (!validateApp(copy)) throw new ConfigError(`Invalid app: ${describeErrors(validateApp.errors, 'app')}`);
  return copy as unknown as AppOptions;
}
