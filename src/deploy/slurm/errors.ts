import { TesseraError } from '../../errors.js';

/**
 * A Slurm command (sbatch, squeue, scancel, sacct) failed or could not be run; the
 * message carries what it printed on stderr, which is what Slurm explains itself with
 * ("Invalid account or account/partition combination specified", say).
 */
export class SlurmCommandError extends TesseraError {
  readonly command: string;
  readonly args: readonly string[];
  /** Its exit code, or null when it could not be run or was killed. */
  readonly exitCode: number | null;
  readonly stderr: string;

  constructor(command: string, args: readonly string[], exitCode: number | null, stderr: string, options?: ErrorOptions) {
    super(`${command} ${args.join(' ')} failed${exitCode === null ? '' : ` (exit code ${exitCode})`}: ${stderr.trim() || 'no message'}`, 'ERR_SLURM_COMMAND', options);
    this.name = 'SlurmCommandError';
    this.command = command;
    this.args = args;
    this.exitCode = exitCode;
    this.stderr = stderr;
  }
}
