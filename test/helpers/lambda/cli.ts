/**
 * Runs the local Lambda service until SIGINT/SIGTERM, for benchmarks and manual use:
 *
 *   node --import tsx test/helpers/lambda/cli.ts [--port 0] [--concurrency 10] [--idle-ms 60000]
 *        [--retry-delays-ms 60000,120000] [--no-freeze] [--duplicate-events] [--logs]
 *
 * Prints one JSON line once it listens: {"endpoint":"http://127.0.0.1:PORT","region":…,"pid":…}.
 * Any access key is accepted; set TESSERA_LAMBDA_ACCESS_KEY_ID and
 * TESSERA_LAMBDA_SECRET_ACCESS_KEY to accept only that one and verify signatures.
 */
import { parseArgs } from 'node:util';
import { type LambdaServiceOptions, startLambdaService } from './service.js';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    host: { type: 'string', default: '127.0.0.1' },
    region: { type: 'string', default: 'us-east-1' },
    concurrency: { type: 'string', default: '10' },
    'idle-ms': { type: 'string', default: '60000' },
    'retry-delays-ms': { type: 'string' },
    'no-freeze': { type: 'boolean', default: false },
    'duplicate-events': { type: 'boolean', default: false },
    logs: { type: 'boolean', default: false },
  },
});

function int(name: string, text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} must be a non-negative integer, not ${text}`);
  return n;
}

const accessKeyId = process.env.TESSERA_LAMBDA_ACCESS_KEY_ID;
const secretAccessKey = process.env.TESSERA_LAMBDA_SECRET_ACCESS_KEY;
const options: LambdaServiceOptions = {
  port: int('port', values.port),
  host: values.host,
  region: values.region,
  concurrency: int('concurrency', values.concurrency),
  idleTimeoutMs: int('idle-ms', values['idle-ms']),
  freeze: !values['no-freeze'],
  ...(values['retry-delays-ms'] !== undefined ? { asyncRetry: { errorDelaysMs: values['retry-delays-ms'].split(',').map((d) => int('retry-delays-ms', d)) } } : {}),
  ...(values['duplicate-events'] ? { duplicateEvents: () => true } : {}),
  ...(values.logs ? { log: (fn: string, line: string) => process.stderr.write(`[${fn}] ${line}\n`) } : {}),
  ...(accessKeyId !== undefined && secretAccessKey !== undefined ? { credentials: [{ accessKeyId, secretAccessKey }] } : {}),
};

const service = await startLambdaService(options);
process.stdout.write(`${JSON.stringify({ endpoint: service.endpoint, port: service.port, region: service.region, accountId: service.accountId, pid: process.pid })}\n`);

const stop = (): void => {
  void service.close().then(() => process.exit(0));
};
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
