// `npm run bench`: skiff's benchmark figures, one section per capability.
import { benchImages } from './images.js';

const sections: [string, () => Promise<string>][] = [['images: pull + unpack', benchImages]];

for (const [name, run] of sections) {
  process.stdout.write(`\n== ${name}\n`);
  const started = performance.now();
  process.stdout.write((await run()) + '\n');
  process.stdout.write(`(${((performance.now() - started) / 1000).toFixed(1)} s)\n`);
}
