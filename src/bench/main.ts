// `npm run bench` → node dist/bench/main.js [options]; see command.ts.
// Exit statuses as `ipckit bench`: 1 when a run fails, 2 for a usage error.
import { applyExitConventions, report } from '../cli/exit.js';
import { benchCommand } from './command.js';

const program = benchCommand();
applyExitConventions(program);
program.parseAsync(process.argv).catch(report);
