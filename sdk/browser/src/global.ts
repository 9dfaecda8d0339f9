/** Script-tag entry: `<script src="herald.js">` defines the global `Herald` (the class itself). */
import { Herald } from './Herald';

(globalThis as unknown as { Herald: typeof Herald }).Herald = Herald;
