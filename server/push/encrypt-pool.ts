/**
 * Web Push encryption on worker threads.
 *
 * Encrypting a message (~200 µs, most of it the ECDH) is the bulk of a push send. On the event loop, a
 * 100,000-device publish would put ~20 s of crypto between the node's WebSocket frames; on threads, the
 * main thread only hands each message over and sends the body that comes back. On one CPU threads would
 * only add a copy per message, so the default is one thread per CPU beyond the first (at most 4), and 0
 * there: encryption then stays on the event loop, as `encryptPayload` alone.
 */
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { HeraldError, type ErrorName } from '../errors';
import { encryptPayload, type SubscriptionKeys } from './encrypt-payload';

/** What a thread is handed: strings cross as they are; bytes are copied to their exact size (see `exact`). */
export interface EncryptRequest {
  id: number;
  plaintext: string | Uint8Array;
  p256dh: string | Uint8Array;
  auth: string | Uint8Array;
}

/** A thread's answer: the request body, or what `encryptPayload` threw. */
export type EncryptReply = { id: number; body: Uint8Array } | { id: number; error: { message: string; herald?: ErrorName } };

/** Threads when none are configured: one per CPU this process may use beyond the first, at most 4. */
export function defaultEncryptThreads(cpus: number = availableParallelism()): number {
  return Math.max(0, Math.min(4, cpus - 1));
}

/** The thread a message was on ended (it crashed, or the pool closed) before answering; sending again will do. */
export class EncryptThreadError extends Error {
  override readonly name = 'EncryptThreadError';
}

/** A thread that dies this soon after it started is failing to start, not crashing on a message (ms). */
const EARLY_DEATH_MS = 2000;
/** Early deaths in a row after which the pool stops starting threads and encrypts on the event loop. */
const MAX_EARLY_DEATHS = 3;

interface Pending {
  resolve(body: Buffer): void;
  reject(err: Error): void;
}

interface Thread {
  worker: Worker;
  startedAt: number;
  pending: Map<number, Pending>;
}

export interface EncryptPoolOptions {
  /** The thread's script; the compiled encrypt-worker.js beside this file unless a test says otherwise. */
  script?: string;
  /** A thread ended unexpectedly (it is replaced), or the pool gave up on threads (`fellBack`). */
  onThreadExit?(err: Error, fellBack: boolean): void;
}

export class EncryptPool {
  private threads: Thread[] = [];
  /** Threads are started by the first message, so a node that never sends a push never starts one. */
  private started = false;
  private fellBack = false;
  private nextId = 1;
  private closed = false;
  private earlyDeaths = 0;
  private readonly script: string;

  constructor(
    private readonly wanted: number,
    private readonly options: EncryptPoolOptions = {},
  ) {
    this.script = options.script ?? join(__dirname, 'encrypt-worker.js');
  }

  /** Threads encrypting (started or to be started); 0 once the pool has fallen back to the event loop. */
  get size(): number {
    return this.fellBack ? 0 : this.wanted;
  }

  /** The running threads' workers, for tests that end one on purpose. */
  get workers(): readonly Worker[] {
    return this.threads.map((t) => t.worker);
  }

  /**
   * The request body for one message, from the least busy thread. Rejects as `encryptPayload` throws (a
   * HeraldError for a payload or keys no retry can fix), or with EncryptThreadError when the thread ended.
   */
  encrypt(plaintext: string | Uint8Array, keys: SubscriptionKeys): Promise<Buffer> {
    if (this.closed) return Promise.reject(new EncryptThreadError('push encryption is closed'));
    if (!this.started) {
      this.started = true;
      for (let i = 0; i < this.wanted; i++) this.threads.push(this.spawn());
    }
    if (this.threads.length === 0) {
      try {
        return Promise.resolve(encryptPayload(plaintext, keys));
      } catch (err) {
        return Promise.reject(err instanceof Error ? err : new Error(String(err)));
      }
    }
    let thread = this.threads[0];
    for (const t of this.threads) if (t.pending.size < thread.pending.size) thread = t;
    const id = this.nextId++;
    const request: EncryptRequest = { id, plaintext: exact(plaintext), p256dh: exact(keys.p256dh), auth: exact(keys.auth) };
    return new Promise<Buffer>((resolve, reject) => {
      thread.pending.set(id, { resolve, reject });
      thread.worker.postMessage(request);
    });
  }

  /** Ends every thread; messages still on them reject with EncryptThreadError. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.threads.map((t) => t.worker.terminate()));
  }

  private spawn(): Thread {
    const worker = new Worker(this.script);
    const thread: Thread = { worker, startedAt: Date.now(), pending: new Map() };
    // An idle pool does not keep the process alive; messages in flight are answered while it runs.
    worker.unref();
    worker.on('message', (reply: EncryptReply) => {
      const pending = thread.pending.get(reply.id);
      if (!pending) return;
      thread.pending.delete(reply.id);
      // A thread that answered has started: its later deaths are crashes, not a failing start.
      this.earlyDeaths = 0;
      if ('body' in reply) pending.resolve(Buffer.from(reply.body.buffer, reply.body.byteOffset, reply.body.byteLength));
      else pending.reject(reply.error.herald ? new HeraldError(reply.error.herald, reply.error.message) : new Error(reply.error.message));
    });
    // 'error' (an uncaught exception in the thread) is followed by 'exit'; whichever comes first handles it.
    worker.on('error', (err) => this.ended(thread, err));
    worker.on('exit', (code) => this.ended(thread, new Error(`push encryption thread exited with code ${code}`)));
    return thread;
  }

  private ended(thread: Thread, err: Error): void {
    const i = this.threads.indexOf(thread);
    if (i < 0) return;
    failPending(thread, `push encryption thread ended: ${err.message}`);
    if (this.closed) {
      this.threads.splice(i, 1);
      return;
    }
    if (Date.now() - thread.startedAt < EARLY_DEATH_MS) this.earlyDeaths++;
    // A script that cannot start would be restarted without end; after a few tries the event loop takes over.
    const fellBack = this.earlyDeaths >= MAX_EARLY_DEATHS;
    if (fellBack) {
      this.fellBack = true;
      const others = this.threads.filter((t) => t !== thread);
      this.threads = [];
      // No longer in the list, their own 'exit' will not reach them: their messages fail here.
      for (const t of others) {
        failPending(t, 'push encryption threads stopped: they keep failing to start');
        void t.worker.terminate();
      }
    } else {
      this.threads[i] = this.spawn();
    }
    this.options.onThreadExit?.(err, fellBack);
  }
}

/** Fails every message waiting on `thread` with EncryptThreadError (the sender retries them). */
function failPending(thread: Thread, message: string): void {
  for (const p of thread.pending.values()) p.reject(new EncryptThreadError(message));
  thread.pending.clear();
}

/**
 * Bytes as a thread can take them cheaply: a small Buffer is usually a view of Node's shared 8 KiB pool, and
 * posting it would copy the whole pool, so it is copied to its own size first. Strings cross as they are.
 */
function exact(value: string | Uint8Array): string | Uint8Array {
  if (typeof value === 'string' || (value.byteOffset === 0 && value.byteLength === value.buffer.byteLength)) return value;
  return new Uint8Array(value);
}
