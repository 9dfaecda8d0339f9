/**
 * End-to-end encrypted channels (protocol.md §1.12), byte for byte as pusher-http-node does it so that
 * pusher-js and Herald's browser SDK decrypt what this SDK sends: NaCl secretbox with a per-channel key
 * `SHA256(channelName ‖ masterKey)` and a random 24-byte nonce.
 */
import { createHash } from 'node:crypto';
import nacl from 'tweetnacl';

/** The 32-byte key of one encrypted channel. */
export function channelSharedSecret(channel: string, masterKey: Buffer): Buffer {
  return createHash('sha256').update(Buffer.concat([Buffer.from(channel), masterKey])).digest();
}

/**
 * Event `data` for an encrypted channel: `{"nonce":b64,"ciphertext":b64}`. The plaintext is
 * `JSON.stringify(data)` even for strings, as pusher-http-node does; clients parse it back.
 */
export function encryptData(channel: string, data: unknown, masterKey: Buffer, nonce: Uint8Array = nacl.randomBytes(24)): string {
  const plaintext = new Uint8Array(Buffer.from(JSON.stringify(data), 'utf8'));
  const ciphertext = nacl.secretbox(plaintext, nonce, new Uint8Array(channelSharedSecret(channel, masterKey)));
  return JSON.stringify({ nonce: Buffer.from(nonce).toString('base64'), ciphertext: Buffer.from(ciphertext).toString('base64') });
}

/** Reverses {@link encryptData}; null when the box does not open (wrong key or tampered). */
export function decryptData(channel: string, wire: string, masterKey: Buffer): unknown {
  const { nonce, ciphertext } = JSON.parse(wire) as { nonce: string; ciphertext: string };
  const opened = nacl.secretbox.open(
    new Uint8Array(Buffer.from(ciphertext, 'base64')),
    new Uint8Array(Buffer.from(nonce, 'base64')),
    new Uint8Array(channelSharedSecret(channel, masterKey)),
  );
  return opened === null ? null : (JSON.parse(Buffer.from(opened).toString('utf8')) as unknown);
}
