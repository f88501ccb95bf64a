/**
 * A scheduler preload module for AWS: a persistent pool of worker processes beside the
 * scheduler, bursting onto Lambda.
 *
 *   TESSERA_LAMBDA_ROLE=arn:aws:iam::123456789012:role/tessera-worker AWS_REGION=eu-west-1 \
 *   TESSERA_PUBLIC_ADDRESS=tcp://10.0.1.5:8786 \
 *   NODE_OPTIONS='--import tsx' npx tessera scheduler --host 0.0.0.0 --port 8786 --token "$TOKEN" --preload examples/lambda-setup.ts
 *
 * TESSERA_PUBLIC_ADDRESS is the scheduler as the functions reach it (its address in the VPC
 * the functions are attached to, or a public one). See docs/lambda.md for the role.
 */
import { type LambdaBackend, lambdaBackend, type Scheduler } from 'tessera';
import { ChildProcessBackend } from './child-process-backend.js';

let pool: ChildProcessBackend | undefined;
let burst: LambdaBackend | undefined;

export async function setup(scheduler: Scheduler): Promise<void> {
  const role = process.env['TESSERA_LAMBDA_ROLE'];
  const address = process.env['TESSERA_PUBLIC_ADDRESS'];
  if (role === undefined || address === undefined) throw new Error('set TESSERA_LAMBDA_ROLE and TESSERA_PUBLIC_ADDRESS');
  pool = new ChildProcessBackend({ address: scheduler.address });
  burst = lambdaBackend({
    scheduler: address,
    ...(process.env['TESSERA_TOKEN'] === undefined ? {} : { token: process.env['TESSERA_TOKEN'] }),
    role,
    memoryMB: 1769,
    concurrency: 500,
  });
  // Builds the package and creates the function now, so the first burst does not wait for it.
  await burst.prepare();
  scheduler.adapt(pool, { minimum: 2, maximum: 500, burst, targetDuration: '5s' });
}

export async function teardown(scheduler: Scheduler): Promise<void> {
  scheduler.stopAdapting();
  await burst?.close();
  await pool?.close();
}
