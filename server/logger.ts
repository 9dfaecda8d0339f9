import pino, { type Logger } from 'pino';
import pretty from 'pino-pretty';

/** Pretty logs on a terminal for people, JSON lines otherwise for log collectors. */
export function createLogger(level: string, destination: NodeJS.WritableStream = process.stdout): Logger {
  const isTty = (destination as NodeJS.WriteStream).isTTY === true;
  if (isTty) return pino({ level }, pretty({ colorize: true, translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname', destination }));
  return pino({ level }, destination);
}
