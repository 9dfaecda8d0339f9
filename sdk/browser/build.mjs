#!/usr/bin/env node
// Builds the browser SDK: `node sdk/browser/build.mjs` (from anywhere). Writes to sdk/browser/dist:
//   herald.js / herald.mjs                        the SDK (script tag: global `Herald`; ESM)
//   herald-encryption.js / herald-encryption.mjs  encrypted-channel decryption (tweetnacl), separate
//   herald-sw.js                                  the push service worker
//   *.d.ts                                        type declarations (tsc --emitDeclarationOnly)
// and prints gzipped sizes; fails when the base bundle is over 15 KB gzipped.
// `--no-types` skips the declarations (faster, used by tests).
import { build } from 'esbuild';
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execFileSync } from 'node:child_process';
import { gzipSync } from 'node:zlib';
import { Buffer } from 'node:buffer';

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, 'dist');
const src = join(here, 'src');
const withTypes = !process.argv.includes('--no-types');
const BUDGET_GZIP_BYTES = 15 * 1024;

rmSync(dist, { recursive: true, force: true });
mkdirSync(dist, { recursive: true });

// tweetnacl's compact build: a quarter the size of nacl-fast, and events (≤10 KB) decrypt in well under a ms.
const naclCompact = { alias: { tweetnacl: 'tweetnacl/nacl.js' } };
const common = { bundle: true, minify: true, sourcemap: true, target: ['es2019'], platform: 'browser', legalComments: 'none', logLevel: 'warning' };
await Promise.all([
  build({ ...common, entryPoints: [join(src, 'global.ts')], format: 'iife', outfile: join(dist, 'herald.js') }),
  build({ ...common, entryPoints: [join(src, 'index.ts')], format: 'esm', outfile: join(dist, 'herald.mjs') }),
  build({ ...common, entryPoints: [join(src, 'encryption-global.ts')], format: 'iife', outfile: join(dist, 'herald-encryption.js'), ...naclCompact }),
  build({ ...common, entryPoints: [join(src, 'encryption.ts')], format: 'esm', outfile: join(dist, 'herald-encryption.mjs'), ...naclCompact }),
]);
copyFileSync(join(here, 'herald-sw.js'), join(dist, 'herald-sw.js'));

if (withTypes) {
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  execFileSync(process.execPath, [tsc, '-p', join(here, 'tsconfig.json')], { stdio: 'inherit' });
  writeFileSync(join(dist, 'herald.d.ts'), "export * from './types/browser/src/index';\n");
  writeFileSync(join(dist, 'herald-encryption.d.ts'), "export * from './types/browser/src/encryption';\n");
  writeFileSync(
    join(dist, 'herald-global.d.ts'),
    "// Types of the script-tag build: `/// <reference path=\"herald-global.d.ts\" />`.\n" +
      "import type { Herald as HeraldClass, Encryption } from './types/browser/src/index';\n" +
      'declare global {\n  const Herald: typeof HeraldClass;\n  const HeraldEncryption: Encryption;\n}\nexport {};\n',
  );
}

const gz = (name) => gzipSync(readFileSync(join(dist, name)), { level: 9 }).length;
const kb = (n) => `${(n / 1024).toFixed(2)} KB`;
const base = gz('herald.js');
const enc = gz('herald-encryption.js');
const both = gzipSync(Buffer.concat([readFileSync(join(dist, 'herald.js')), readFileSync(join(dist, 'herald-encryption.js'))]), { level: 9 }).length;
console.log(`herald.js                      ${kb(base)} gzipped (without encryption; budget ${kb(BUDGET_GZIP_BYTES)})`);
console.log(`herald-encryption.js           ${kb(enc)} gzipped`);
console.log(`herald.js + herald-encryption  ${kb(both)} gzipped (with encryption)`);
console.log(`herald.mjs                     ${kb(gz('herald.mjs'))} gzipped`);
if (base > BUDGET_GZIP_BYTES) {
  console.error(`herald.js is over its ${kb(BUDGET_GZIP_BYTES)} gzipped budget`);
  process.exit(1);
}
