/**
 * Why a pod failed to start, told the way `kubectl describe` and `kubectl logs --previous`
 * would: its events and the last lines its container wrote. Reading either may fail (the
 * pod is going); the report then says so instead.
 */
import { type EventSummary, errorText, type KubeApi } from './api.js';
import type { PodState } from './pod-status.js';

export const LOG_LINES = 20;

export interface PodReport {
  readonly events: readonly EventSummary[];
  /** The container's last lines (of its previous run after a crash). */
  readonly log: readonly string[];
}

export async function readPodReport(api: KubeApi, pod: { readonly name: string; readonly uid: string | undefined }, container: string, state: Extract<PodState, { kind: 'failed' }>): Promise<PodReport> {
  const [events, log] = await Promise.all([
    api.podEvents(pod.name, pod.uid).catch((error: unknown): EventSummary[] => [{ type: 'Warning', reason: 'Unknown', message: `the events could not be read: ${errorText(error)}`, count: 1 }]),
    state.log === 'none' ? Promise.resolve('') : api.podLog(pod.name, container, LOG_LINES, state.log === 'previous').catch((error: unknown) => `(the log could not be read: ${errorText(error)})`),
  ]);
  return { events, log: log.split('\n').filter((line) => line.trim() !== '').slice(-LOG_LINES) };
}

/** The report's lines, indented under a first line the caller writes. */
export function reportLines(report: PodReport, previous: boolean): string[] {
  const lines: string[] = [];
  if (report.events.length > 0) {
    lines.push('  events:');
    for (const e of report.events.slice(-10)) lines.push(`    ${e.type} ${e.reason}${e.count > 1 ? ` (x${e.count})` : ''}: ${e.message}`);
  }
  if (report.log.length > 0) {
    lines.push(`  last ${report.log.length} log line(s)${previous ? ' of its previous run' : ''}:`);
    for (const line of report.log) lines.push(`    ${line}`);
  }
  return lines;
}
