/** A chaos run in one line, for the test's output and the bench's summary; and the failure text. */
import { describeSchedule } from './fault-schedule.js';
import type { ChaosReport } from './run-chaos.js';

export function isPass(r: ChaosReport): boolean {
  return r.verdict.ok && r.recoveryMs !== null && r.crashes.length === 0;
}

export function reportLine(r: ChaosReport): string {
  const v = r.verdict;
  const kills = Object.entries(r.faults.kills).filter(([, n]) => n > 0).map(([target, n]) => `${target}×${n}`).join(' ');
  const outages = Object.entries(r.faults.database).filter(([, n]) => n > 0).map(([kind, n]) => `${kind}×${n}`).join(' ') || 'none';
  const refused = Object.entries(r.ingestFailures).sort(([, x], [, y]) => y - x).map(([outcome, n]) => `${outcome} ${n}`).join(', ') || 'none';
  const proxy = Object.entries(r.faults.proxy).filter(([, n]) => n > 0).map(([kind, n]) => `${kind} ${n}`).join(', ');
  const restart = [...r.faults.restartMs].sort((x, y) => x - y);
  const parts = Object.entries(r.recoveryParts).map(([part, ms]) => `${part} ${ms === null ? 'never' : `${(ms / 1000).toFixed(1)} s`}`).join(', ');
  return `chaos seed ${r.seed}: ${v.answered}/${v.sent} webhooks answered 200 (${v.answeredAsDuplicate} as duplicate after a lost answer); ` +
    `forwarded A→B ${v.forwarded.aToB}, B→A ${v.forwarded.bToA}; ` +
    `node faults ${kills} (aimed kills that found nothing to aim at: ${r.faults.aimedKillsMissed}); database outages ${outages}; ` +
    `tries not answered 200: ${refused} (slowest 503 database_unavailable ${r.slowestUnavailableMs} ms); proxy requests: ${proxy}; ` +
    `B deduplicated ${r.redeliveriesDeduplicatedByB} re-sent events; ` +
    `lost ${v.lost}, listener duplicates ${v.duplicates}, per-peer order violations ${v.peerOrderViolations}, seq mismatches ${v.seqMismatches}, ` +
    `out of scope ${v.outOfScope}, across teams ${v.crossTeam}; ` +
    `recovered ${r.recoveryMs === null ? 'NEVER' : `${(r.recoveryMs / 1000).toFixed(1)} s`} after the last fault (${parts}); ` +
    `restarts p50 ${restart[Math.floor(restart.length / 2)] ?? '-'} ms, max ${restart.at(-1) ?? '-'} ms` +
    (isPass(r) ? '' : ' — FAILED');
}

/** Everything needed to understand and rerun a failed run. */
export function failureText(r: ChaosReport, rerunCommand: string): string {
  return [`chaos failed — rerun with ${r.rerun} ${rerunCommand}`, reportLine(r), ...r.verdict.problems, ...r.crashes, describeSchedule(r.schedule)].join('\n');
}
