import pino, { type Logger } from 'pino';
import pretty from 'pino-pretty';

/** Pretty logs on a terminal for people, JSON lines otherwise for log collectors. */
export function createLogger(level: string, destination: NodeJS.WritableStream = process.stdout): Logger {
  const isTty = (destination as NodeJS.WriteStream).isTTY === true;
  if (isTty) return pino({ level }, pretty({ colorize: true, translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname', destination }));
  return pino({ level }, destination);
}

type Bindings = Record<string, unknown>;
type LogMethod = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace';

/**
 * What fastify hands each request as `request.log`: the pino child bound to the request id, made on first
 * use. Request logging is off, so almost every REST trigger and WebSocket handshake logs nothing, and a
 * pino child (its bindings serialized up front) was ~2–3 µs of each. Passed to fastify as
 * `childLoggerFactory: lazyRequestLogger`.
 */
class LazyRequestLogger {
  private made: Logger | null = null;

  constructor(
    private readonly parent: Logger,
    private readonly bindings: Bindings,
    private readonly options: pino.ChildLoggerOptions,
  ) {}

  private get real(): Logger {
    return (this.made ??= this.parent.child(this.bindings, this.options));
  }

  get level(): string {
    return this.made?.level ?? this.options.level ?? this.parent.level;
  }

  set level(level: string) {
    this.real.level = level;
  }

  fatal(...args: unknown[]): void {
    this.log('fatal', args);
  }
  error(...args: unknown[]): void {
    this.log('error', args);
  }
  warn(...args: unknown[]): void {
    this.log('warn', args);
  }
  info(...args: unknown[]): void {
    this.log('info', args);
  }
  debug(...args: unknown[]): void {
    this.log('debug', args);
  }
  trace(...args: unknown[]): void {
    this.log('trace', args);
  }
  silent(): void {}

  isLevelEnabled(level: string): boolean {
    return this.parentDecides ? this.parent.isLevelEnabled(level) : this.real.isLevelEnabled(level);
  }

  child(bindings: Bindings, options?: pino.ChildLoggerOptions): Logger {
    return this.real.child(bindings, options);
  }

  /** No child yet and no level of this request's own: the parent's level is the answer. */
  private get parentDecides(): boolean {
    return this.made === null && this.options.level === undefined;
  }

  private log(method: LogMethod, args: unknown[]): void {
    // A level the parent drops needs no child at all.
    if (this.parentDecides && !this.parent.isLevelEnabled(method)) return;
    (this.real[method] as (...a: unknown[]) => void)(...args);
  }
}

export function lazyRequestLogger(parent: Logger, bindings: Bindings, options: pino.ChildLoggerOptions): Logger {
  return new LazyRequestLogger(parent, bindings, options) as unknown as Logger;
}
