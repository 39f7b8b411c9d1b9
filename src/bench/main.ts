// `npm run bench` → node dist/bench/main.js [options]; see command.ts.
import { benchCommand } from './command.js';

benchCommand()
  .parseAsync(process.argv)
  .catch((e: unknown) => {
    process.stderr.write(`bench: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = 1;
  });
