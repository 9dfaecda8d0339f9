/** Script-tag entry: `herald-encryption.js` after `herald.js` enables encrypted channels for every client. */
import { encryption } from './encryption';

const g = globalThis as unknown as { Herald?: { encryption?: unknown }; HeraldEncryption: typeof encryption };
g.HeraldEncryption = encryption;
if (g.Herald) g.Herald.encryption = encryption;
