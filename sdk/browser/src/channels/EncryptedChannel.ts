import type { ServerMessage } from '../../../protocol';
import { Channel, type ChannelHost } from './Channel';

/**
 * Opens NaCl secretboxes (protocol.md §1.12). Kept out of the base bundle: `herald-encryption` provides
 * one built on tweetnacl.
 */
export interface Encryption {
  /** The plaintext of `ciphertext`, or null when the key does not open it. Inputs are base64. */
  open(ciphertext: string, nonce: string, sharedSecret: string): string | null;
}

class EncryptionError extends Error {
  override readonly name = 'EncryptionError';
}

/**
 * A `private-encrypted-` channel: events arrive as `{nonce, ciphertext}` and are decrypted with the key
 * the auth endpoint returns (`shared_secret`, never sent to Herald). When a box does not open, the key is
 * fetched again once, as pusher-js does, in case it changed.
 */
export class EncryptedChannel extends Channel {
  private key: string | null = null;
  private refreshing: Promise<boolean> | null = null;

  constructor(
    name: string,
    host: ChannelHost,
    private readonly encryption: Encryption | undefined,
  ) {
    super(name, host);
  }

  override trigger(): boolean {
    throw new Error('Client events are not supported on encrypted channels');
  }

  protected override async authorize(socketId: string): Promise<Record<string, unknown>> {
    if (!this.encryption) throw new EncryptionError(`Load herald-encryption to subscribe to ${this.name}`);
    const a = await this.host.authorize(socketId, this.name);
    if (typeof a.shared_secret !== 'string') throw new EncryptionError(`The auth answer for ${this.name} has no shared_secret`);
    this.key = a.shared_secret;
    return { auth: a.auth };
  }

  protected override appEvent(msg: ServerMessage): void {
    const box = msg.data as { nonce?: unknown; ciphertext?: unknown } | null;
    if (!box || typeof box.nonce !== 'string' || typeof box.ciphertext !== 'string') {
      this.host.log('error', `Dropped ${msg.event} on ${this.name}: not a {nonce, ciphertext} box`);
      return;
    }
    const { nonce, ciphertext } = box;
    const plain = this.open(ciphertext, nonce);
    if (plain !== null) {
      this.emit(msg.event, parse(plain));
      return;
    }
    void this.refreshKey().then((ok) => {
      const retried = ok ? this.open(ciphertext, nonce) : null;
      if (retried === null) this.host.log('error', `Dropped ${msg.event} on ${this.name}: it does not decrypt with the channel key`);
      else this.emit(msg.event, parse(retried));
    });
  }

  private open(ciphertext: string, nonce: string): string | null {
    if (!this.key || !this.encryption) return null;
    try {
      return this.encryption.open(ciphertext, nonce, this.key);
    } catch {
      return null;
    }
  }

  /** One key fetch shared by every event that failed meanwhile. */
  private refreshKey(): Promise<boolean> {
    const socketId = this.host.socketId;
    if (socketId === null) return Promise.resolve(false);
    this.refreshing ??= this.host
      .authorize(socketId, this.name)
      .then(
        (a) => {
          if (typeof a.shared_secret === 'string') this.key = a.shared_secret;
          return typeof a.shared_secret === 'string';
        },
        (err: unknown) => {
          this.host.log('error', `Could not fetch a new key for ${this.name}: ${(err as Error).message}`);
          return false;
        },
      )
      .finally(() => {
        this.refreshing = null;
      });
    return this.refreshing;
  }
}

/** Decrypted text is JSON (the server SDKs encrypt `JSON.stringify(data)`); keep raw text otherwise. */
function parse(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
