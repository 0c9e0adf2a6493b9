/** `npm run model -- <command>`: see src/model-commands.ts. */
import * as tf from '@tensorflow/tfjs';
import { runCliIfMain } from '@pitwall/common';
import { runModelCli } from '../src/model-commands.js';

async function main(argv: string[]): Promise<number> {
  // No debug checks and no console hint to install tfjs-node; the CPU backend is enough to load a model.
  tf.enableProdMode();
  await tf.setBackend('cpu');
  return runModelCli(argv, process.env, {
    out: (text) => process.stdout.write(text + '\n'),
    err: (text) => process.stderr.write(text + '\n'),
  });
}

runCliIfMain(import.meta.url, 'model', main);
