/**
 * The original flow for the harness: the blog post's deploy2.sh + switch.sh (re-created in
 * bench/original/) on their own Nginx with the original-style configuration, laid out like the
 * original host under a directory: DIR/home/ec2-user (scripts, jar, symlinks, deploy.log,
 * app.log) and DIR/etc/nginx (nginx.conf, conf.d/service-url.inc, logs).
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join, resolve } from 'node:path';
import { PROJECT_DIR, TEST_JAVA_OPTS, type HostPorts } from '../../scripts/lib/host.js';
import { appStartSeconds, fileSize, readFrom } from './applog.js';
import type { DeployFlow, DeployPhase, DeployRun } from './harness.js';
import { pidAlive, processesWithCwdUnder, runTracked, sleep, stopPid, throwIfStopping } from './processes.js';

export const ORIGINAL_DIR = join(PROJECT_DIR, 'bench', 'original');

/** The jar name the original's Jenkins job copied over on every build. */
const JAR_NAME = 'dev-blog-0.0.1-SNAPSHOT.jar';

/** Resolves once something accepts TCP connections on 127.0.0.1:port, or rejects after `ms`. */
async function waitForPort(port: number, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const open = await new Promise<boolean>((res) => {
      const socket = connect({ host: '127.0.0.1', port });
      socket.once('connect', () => (socket.destroy(), res(true)));
      socket.once('error', () => res(false));
    });
    if (open) return;
    await sleep(50);
  }
  throw new Error(`nothing listens on 127.0.0.1:${port} after ${ms} ms`);
}

export class OriginalHost {
  readonly basePath: string;
  readonly prefix: string;
  readonly url: string;

  constructor(
    readonly dir: string,
    readonly ports: HostPorts,
  ) {
    this.basePath = join(resolve(dir), 'home', 'ec2-user');
    this.prefix = join(resolve(dir), 'etc', 'nginx');
    this.url = `http://127.0.0.1:${ports.nginx}`;
  }

  private nginx(...args: string[]): ReturnType<typeof spawnSync> {
    const conf = join(this.prefix, 'nginx.conf');
    return spawnSync('nginx', ['-p', this.prefix, '-c', conf, '-e', join(this.prefix, 'logs', 'error.log'), ...args], {
      encoding: 'utf8',
    });
  }

  get includePath(): string {
    return join(this.prefix, 'conf.d', 'service-url.inc');
  }

  /** The original's set-up by hand: Nginx configured, service-url.inc at 8081, the two scripts in the home directory. */
  async up(): Promise<this> {
    for (const d of [this.basePath, join(this.prefix, 'conf.d'), join(this.prefix, 'logs'), join(this.prefix, 'tmp')]) {
      mkdirSync(d, { recursive: true });
    }
    const template = readFileSync(join(ORIGINAL_DIR, 'nginx.conf.tmpl'), 'utf8');
    const userLine = process.getuid?.() === 0 ? 'user root;' : '# user: not root, workers keep the current user';
    const conf = template
      .replace(/^user root;$/m, userLine)
      .replaceAll('@PREFIX@', this.prefix)
      .replaceAll('@PORT@', String(this.ports.nginx));
    writeFileSync(join(this.prefix, 'nginx.conf'), conf);
    // The blog's step 1: `set $service_port 8081;` in conf.d/service-url.inc.
    writeFileSync(this.includePath, `set $service_port ${this.ports.blue};\n`);
    for (const script of ['deploy2.sh', 'switch.sh']) {
      copyFileSync(join(ORIGINAL_DIR, script), join(this.basePath, script));
      chmodSync(join(this.basePath, script), 0o755);
    }
    const test = this.nginx('-t', '-q');
    if (test.status !== 0) throw new Error(`the original's Nginx configuration is rejected: ${String(test.stderr)}`);
    throwIfStopping("the original's Nginx");
    const start = this.nginx();
    if (start.status !== 0) throw new Error(`the original's Nginx did not start: ${String(start.stderr)}`);
    await waitForPort(this.ports.nginx, 5000);
    return this;
  }

  /** The variables through which bench/original/*.sh take this host's paths and ports. */
  scriptEnv(): NodeJS.ProcessEnv {
    return {
      ...process.env,
      ORIGINAL_BASE_PATH: this.basePath,
      ORIGINAL_NGINX_PREFIX: this.prefix,
      ORIGINAL_NGINX_PORT: String(this.ports.nginx),
      ORIGINAL_BLUE_PORT: String(this.ports.blue),
      ORIGINAL_GREEN_PORT: String(this.ports.green),
      // The same JVM flags as our slots get, so that both flows boot the same app equally fast.
      JAVA_TOOL_OPTIONS: TEST_JAVA_OPTS,
    };
  }

  /** Points the original's Nginx at `port` the way switch.sh does (rewrite the include, reload). */
  async pointAt(port: number): Promise<void> {
    writeFileSync(this.includePath, `set $service_port ${port};\n`);
    const r = this.nginx('-s', 'reload');
    if (r.status !== 0) throw new Error(`reloading the original's Nginx failed: ${String(r.stderr)}`);
    // The reload returns before the new workers run.
    await sleep(500);
  }

  /** Stops the apps the scripts started (every process working in the home directory). */
  async stopApps(): Promise<void> {
    await Promise.all(processesWithCwdUnder(this.basePath).map((pid) => stopPid(pid)));
  }

  async down(): Promise<void> {
    await this.stopApps();
    const pidFile = join(this.prefix, 'nginx.pid');
    if (!existsSync(pidFile)) return;
    const pid = Number(readFileSync(pidFile, 'utf8').trim());
    if (pid > 0 && pidAlive(pid)) await stopPid(pid);
  }
}

/** Facts about one run of deploy2.sh, from what it appended to deploy.log. */
interface OriginalDecisions {
  readonly readLive: string | null;
  readonly target: string | null;
  readonly targetPort: number | null;
  readonly pkillRan: boolean;
  readonly health: 'UP' | 'failed' | 'unknown';
  readonly switchReadLive: string | null;
  readonly switchSetPort: number | null;
}

function decisions(deployLog: string): OriginalDecisions {
  const reads = [...deployLog.matchAll(/^ > 현재 서버: (.*)$/gm)].map((m) => m[1]!.trim().replace(/\s+/g, ' '));
  const short = (s: string | undefined): string | null => {
    if (s === undefined) return null;
    if (/^<html>/i.test(s)) return "Nginx's HTML error page";
    return s.length > 40 ? `${s.slice(0, 37)}...` : s;
  };
  const target = /^ > Profile: (\S*)/m.exec(deployLog)?.[1];
  const targetPort = /^ > Port: (\d+)/m.exec(deployLog)?.[1];
  const setPort = /^ > set port : (\d+)/m.exec(deployLog)?.[1];
  return {
    readLive: short(reads[0]) || '(empty)',
    target: target ?? null,
    targetPort: targetPort ? Number(targetPort) : null,
    pkillRan: /프로세스 종료$/m.test(deployLog),
    health: /Health Check 성공/.test(deployLog) ? 'UP' : /Health Check 실패/.test(deployLog) ? 'failed' : 'unknown',
    switchReadLive: reads.length > 1 ? short(reads[1]) || '(empty)' : null,
    switchSetPort: setPort ? Number(setPort) : null,
  };
}

export class OriginalFlow implements DeployFlow {
  readonly name = 'original';

  constructor(private readonly host: OriginalHost) {}

  // The scripts know no versions: which one runs is seen only in what the site answers.
  async deploy(jar: string, _version: string, onPhase: (phase: DeployPhase) => void): Promise<DeployRun> {
    const base = this.host.basePath;
    // Jenkins copied each build over the same file; copyFileSync overwrites it in place, as
    // scp/sftp do, so the symlinks of both colours (and a JVM running it) see the new bytes.
    copyFileSync(jar, join(base, JAR_NAME));
    const deployLogOffset = fileSize(join(base, 'deploy.log'));
    let switched = false;
    const result = await runTracked(join(base, 'deploy2.sh'), [], {
      cwd: base,
      env: this.host.scriptEnv(),
      // Its worst case is 10 s + 10 polls 10 s apart + 3 s; past that it is stuck.
      timeoutMs: 180_000,
      onLine: (line) => {
        // switch.sh's `tee` echoes the line it writes into service-url.inc; the reload follows.
        if (!switched && /^set \$service_port \d+;/.test(line)) {
          switched = true;
          onPhase('switch');
        }
      },
    });
    if (switched) onPhase('switched');
    const d = decisions(readFrom(join(base, 'deploy.log'), deployLogOffset));
    // app.log is truncated by each start (`> app.log`), so it holds this deploy's app, if any started.
    const appSeconds = appStartSeconds(readFrom(join(base, 'app.log'), 0));
    const ok = result.code === 0;
    const summary =
      `read live '${d.readLive}', started ${d.target ?? '?'} on ${d.targetPort ?? '?'}` +
      `${d.pkillRan ? ' (its pkill ran and stopped nothing)' : ''}, health ${d.health}` +
      (d.switchSetPort !== null ? `, switch read '${d.switchReadLive}' and set port ${d.switchSetPort}` : ', no switch');
    return {
      ok,
      code: result.code,
      wallSeconds: result.ms / 1000,
      appSeconds,
      summary,
      details: { ...d, stdout: result.stdout.trim().split('\n').slice(-12), stderr: result.stderr.trim() || undefined },
    };
  }
}
