/**
 * Decryption for `private-encrypted-` channels (protocol.md §1.12): NaCl secretbox with tweetnacl. A
 * separate entry so the base bundle stays small: `import { encryption } from '@herald/browser/encryption'`
 * and pass `{ encryption }` to `new Herald`, or load `herald-encryption.js` after `herald.js`.
 */
import nacl from 'tweetnacl';
import type { Encryption } from './channels/EncryptedChannel';

function fromBase64(text: string): Uint8Array {
  const bin = atob(text);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

const utf8 = new TextDecoder('utf-8', { fatal: false });

export const encryption: Encryption = {
  open(ciphertext, nonce, sharedSecret) {
    const box = fromBase64(ciphertext);
    const n = fromBase64(nonce);
    const key = fromBase64(sharedSecret);
    if (n.length !== nacl.secretbox.nonceLength || key.length !== nacl.secretbox.keyLength || box.length < nacl.secretbox.overheadLength) return null;
    const plain = nacl.secretbox.open(box, n, key);
    return plain === null ? null : utf8.decode(plain);
  },
};
