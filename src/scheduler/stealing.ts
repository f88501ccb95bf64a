/**
 * Work stealing: on a tick, move tasks that wait behind others on a saturated worker to a
 * worker with idle threads, when computing them dominates the cost of moving them.
 *
 * Only tasks beyond the victim's thread count and not known to have started are
 * candidates, lowest priority first: a worker runs its tasks in priority order, so those
 * are the ones that wait longest (the victim still has the last word through
 * `steal-response`). Paused and closing
 * workers start nothing new, so everything they process is a candidate and cost is no
 * object.
 */
import { admits, missingBytes } from './placement.js';
import { comparePriority, occupancy, type TaskState, type WorkerState } from './records.js';

/** A steal costs a request and an answer before the thief can start: seconds. */
export const STEAL_LATENCY = 0.005;
/** Steal only when computing takes at least this many times longer than moving. */
export const STEAL_COST_RATIO = 2;
/** Thieves tried per task besides those already holding its inputs. */
const THIEF_CANDIDATES = 2;

export interface StealPlan {
  readonly task: TaskState;
  readonly victim: WorkerState;
  readonly thief: WorkerState;
}

function freeThreads(ws: WorkerState): number {
  return ws.nthreads - ws.processing.size - ws.stealIncoming;
}

/**
 * Plans steals; reserves each thief's thread (`stealIncoming`) for the steals it plans.
 * O(workers + candidate tasks × (inputs + a few thieves)).
 */
export function planSteals(
  workers: Iterable<WorkerState>,
  inFlight: ReadonlyMap<TaskState, unknown>,
  bandwidth: number,
): StealPlan[] {
  const thieves: WorkerState[] = [];
  const victims: WorkerState[] = [];
  let capacity = 0;
  for (const ws of workers) {
    if (ws.status === 'running') {
      const free = freeThreads(ws);
      if (free > 0) {
        thieves.push(ws);
        capacity += free;
        ws.score = occupancy(ws, bandwidth) / ws.nthreads;
      } else if (ws.processing.size > ws.nthreads) {
        victims.push(ws);
        ws.score = occupancy(ws, bandwidth) / ws.nthreads;
      }
    } else if ((ws.status === 'paused' || ws.status === 'closing') && ws.processing.size > 0) {
      victims.push(ws);
      ws.score = Infinity;
    }
  }
  const plans: StealPlan[] = [];
  if (thieves.length === 0 || victims.length === 0) return plans;
  thieves.sort((a, b) => a.score - b.score);
  victims.sort((a, b) => b.score - a.score);
  let cursor = 0;

  for (const victim of victims) {
    if (capacity === 0) break;
    const running = victim.status === 'running';
    const keep = running ? victim.nthreads : 0;
    const tasks = [...victim.processing].sort(comparePriority);
    for (let i = tasks.length - 1; i >= keep && capacity > 0; i--) {
      const ts = tasks[i] as TaskState;
      // Known to have started (task-started, or sent to a free thread): the victim would refuse.
      if (inFlight.has(ts) || ts.startedAt !== null) continue;
      while (cursor < thieves.length && freeThreads(thieves[cursor] as WorkerState) <= 0) cursor++;
      if (cursor === thieves.length) return plans;

      // Candidates: idle workers holding the task's inputs, then the least loaded idle ones.
      resetChoice(best);
      for (const d of ts.dependencies) {
        if (d.whoHas !== null && d.whoHas.length <= 4) for (const h of d.whoHas) consider(best, ts, h, victim, bandwidth);
      }
      for (let j = cursor, seen = 0; j < thieves.length && seen < THIEF_CANDIDATES; j++) {
        const w = thieves[j] as WorkerState;
        if (freeThreads(w) <= 0) continue;
        consider(best, ts, w, victim, bandwidth);
        seen++;
      }
      const chosen = best.thief;
      if (chosen === null) continue;
      const compute = ts.prefix.duration;
      if (running) {
        if (compute < STEAL_COST_RATIO * best.transfer) continue;
        // The victim would get to it after draining what it has per thread.
        if (best.finish >= victim.score) continue;
        victim.score -= compute / victim.nthreads;
      }
      chosen.stealIncoming++;
      chosen.score += compute / chosen.nthreads;
      capacity--;
      plans.push({ task: ts, victim, thief: chosen });
    }
  }
  return plans;
}

interface ThiefChoice {
  thief: WorkerState | null;
  transfer: number;
  finish: number;
}

const best: ThiefChoice = { thief: null, transfer: 0, finish: Infinity };

function resetChoice(choice: ThiefChoice): void {
  choice.thief = null;
  choice.transfer = 0;
  choice.finish = Infinity;
}

function consider(choice: ThiefChoice, ts: TaskState, w: WorkerState, victim: WorkerState, bandwidth: number): void {
  if (w === victim || w.status !== 'running' || freeThreads(w) <= 0 || !admits(ts, w)) return;
  const transfer = missingBytes(ts, w) / bandwidth + STEAL_LATENCY;
  const finish = w.score + transfer;
  if (finish < choice.finish) {
    choice.thief = w;
    choice.transfer = transfer;
    choice.finish = finish;
  }
}
