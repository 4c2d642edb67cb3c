/** What machine a run was on, so that figures from two runs can be compared (or not). */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, loadavg, release, totalmem } from 'node:os';
import { PROJECT_DIR } from '../../scripts/lib/host.js';

export interface Machine {
  readonly date: string;
  readonly cpuModel: string;
  readonly cores: number;
  readonly memoryGiB: number;
  readonly os: string;
  readonly kernel: string;
  readonly nginx: string;
  readonly java: string;
  readonly node: string;
  readonly wrk: string;
  /** 1-minute load average when the run started: other work on the machine skews every figure. */
  readonly loadAtStart: number;
  readonly gitCommit: string;
}

/** First line of a command's combined output that matches `pattern` (or the first line at all). */
function toolVersion(command: string, args: string[], pattern?: RegExp): string {
  const r = spawnSync(command, args, { encoding: 'utf8' });
  if (r.error) return `not found (${command})`;
  const lines = `${r.stdout}\n${r.stderr}`.split('\n').map((l) => l.trim()).filter(Boolean);
  const line = (pattern ? lines.find((l) => pattern.test(l)) : undefined) ?? lines[0] ?? '';
  return line;
}

function osName(): string {
  try {
    const text = readFileSync('/etc/os-release', 'utf8');
    return /^PRETTY_NAME="?([^"\n]*)"?/m.exec(text)?.[1] ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

function gitCommit(): string {
  const head = spawnSync('git', ['rev-parse', '--short=12', 'HEAD'], { cwd: PROJECT_DIR, encoding: 'utf8' });
  if (head.status !== 0) return 'unknown';
  const dirty = spawnSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: PROJECT_DIR, encoding: 'utf8' });
  return `${head.stdout.trim()}${dirty.stdout.trim() ? ' (with uncommitted changes)' : ''}`;
}

export function describeMachine(): Machine {
  const cpuList = cpus();
  return {
    date: new Date().toISOString(),
    cpuModel: cpuList[0]?.model.trim() || 'unknown',
    cores: cpuList.length,
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    os: osName(),
    kernel: release(),
    nginx: toolVersion('nginx', ['-v']).replace(/^nginx version:\s*/, ''),
    java: toolVersion('java', ['-version'], /version/),
    node: process.version,
    wrk: toolVersion('wrk', ['-v'], /^wrk/).replace(/\s+Copyright.*/, ''),
    loadAtStart: Math.round(loadavg()[0]! * 100) / 100,
    gitCommit: gitCommit(),
  };
}

export function machineLine(m: Machine): string {
  return (
    `${m.cpuModel}, ${m.cores} cores, ${m.memoryGiB} GiB; ${m.os}, kernel ${m.kernel}; ` +
    `${m.nginx}; ${m.java}; Node ${m.node}; ${m.wrk}; load ${m.loadAtStart} at start; commit ${m.gitCommit}`
  );
}
