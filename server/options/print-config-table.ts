/** `npm run docs:config`: prints the configuration table to paste into README.md between its markers. */
import { renderConfigTable } from './config-table';

process.stdout.write(`${renderConfigTable()}\n`);
