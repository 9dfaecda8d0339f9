/**
 * Seeded random input for the fuzz tests: a small PRNG, picks from it, and odd JSON values built from a
 * domain's own words (so a value is sometimes right and mostly near-right). A test prints its seed and
 * `HERALD_FUZZ_SEED=<seed>` replays it.
 */
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { ERRORS } from '../../server/errors';

/** mulberry32: small, seedable, good enough to pick inputs. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export class Pick {
  private readonly random: () => number;

  constructor(seed: number) {
    this.random = rng(seed);
  }

  int(n: number): number {
    return Math.floor(this.random() * n);
  }

  chance(p: number): boolean {
    return this.random() < p;
  }

  one<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)];
  }

  /** Up to `max` picks from `xs`, repeats possible. */
  some<T>(xs: readonly T[], max: number): T[] {
    return Array.from({ length: this.int(max + 1) }, () => this.one(xs));
  }
}

/** The test's seed (HERALD_FUZZ_SEED, else random), reported so a failure can be replayed. */
export function fuzzSeed(t: TestContext): number {
  const given = process.env.HERALD_FUZZ_SEED;
  const seed = given !== undefined ? Number(given) : Math.floor(Math.random() * 2 ** 31);
  t.diagnostic(`seed ${seed} (HERALD_FUZZ_SEED=${seed} replays it)`);
  return seed;
}

/** Keys that have bitten JavaScript servers: prototype names, and the fields the protocols read. */
const ODD_KEYS = ['channel', 'data', 'user_id', 'user_info', 'auth', 'id', 'interests', 'subscription', 'endpoint', 'web', '__proto__', 'constructor', 'k'];

/** Any JSON value, now and then one of `words` (the domain's own names and ids). */
export function oddValue(p: Pick, words: readonly unknown[], depth = 0): unknown {
  switch (p.int(depth > 2 ? 5 : 8)) {
    case 0: return null;
    case 1: return p.chance(0.5);
    case 2: return p.one([0, -1, 1.5, 2 ** 53, -0, 1e308]);
    case 3: return p.one(['', 'x', '__proto__', 'constructor', '{"user_id":"u1"}', 'ü'.repeat(p.int(40)), 'y'.repeat(p.int(3000))]);
    case 4: return p.one(words);
    case 5: return Array.from({ length: p.int(4) }, () => oddValue(p, words, depth + 1));
    default: {
      const o: Record<string, unknown> = {};
      // defineProperty, so `__proto__` becomes an own key as it does when a server parses JSON.
      for (let i = p.int(4); i > 0; i--) {
        Object.defineProperty(o, p.one(ODD_KEYS), { value: oddValue(p, words, depth + 1), enumerable: true, writable: true, configurable: true });
      }
      return o;
    }
  }
}

const HTTP_STATUSES = new Set<number>(Object.values(ERRORS).map((e) => e.status));

/** What every HTTP answer to random input must be: a 2xx, or a status from the error table with a JSON `error`; never a 500. */
export function checkAnswer(what: string, status: number, body: unknown): void {
  assert.notEqual(status, 500, `${what}: 500 ${JSON.stringify(body)}`);
  assert.ok(status < 300 || HTTP_STATUSES.has(status), `${what}: status ${status} is not in the error table`);
  if (status >= 400) assert.equal(typeof (body as { error?: unknown } | null)?.error, 'string', `${what}: an error names itself: ${JSON.stringify(body)}`);
}
