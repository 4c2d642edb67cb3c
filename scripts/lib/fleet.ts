/**
 * A local fleet (for the fleet end-to-end test and measurements): N local hosts from
 * `scripts/local-host` (each a real Nginx and two real JVM slots) behind one more local Nginx
 * that stands in for the Application Load Balancer.
 *
 * A host boots the way the fleet's user data boots an instance the Auto Scaling group launches:
 * its Nginx comes up, SSM Agent starts (the `boot.agentStarted` hook: the test registers the host
 * with the loopback SSM endpoint, tagged), the recorded release is read (`boot.release`, e.g.
 * {@link recordedRelease}) and deployed with the engine, and only then does the host pass the
 * load balancer's health check and get traffic. Until then `cloud-init status --wait` on the
 * host waits (a stand-in on the host's PATH), as the deploy document waits for cloud-init before
 * it deploys: a roll-out that reaches a booting host deploys after the boot, not over it.
 *
 * The load balancer stand-in: round robin over the hosts' Nginx ports, keep-alive connections to
 * them, passive health (`max_fails`, `fail_timeout`). An ALB routes only to targets whose active
 * health check passes and drains a deregistering target; this stand-in has no active check, so
 * it retries a request on the next host when one did not answer (`proxy_next_upstream error
 * timeout http_502 http_503 http_504`). Nginx never retries a POST once it was sent (only when
 * the connection could not be made); an ALB does not retry at all. Every retry is visible in the
 * access log ({@link LocalFleet.balancerLog}), so a test can require that none was needed.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetParameterCommand, type SSMClient } from '@aws-sdk/client-ssm';
import { parseFleetRelease } from '../../lib/deploy/fleet.js';
import { LocalHost, PROJECT_DIR, TEST_JAVA_OPTS, waitFor, type RunResult } from './host.js';

/** The release a booting host deploys. */
export interface BootRelease {
  readonly artifactUri: string;
  readonly sha256: string;
  readonly version: string;
}

/** What a booting host asks of its surroundings. */
export interface HostBoot {
  /** SSM Agent has started on the host: it is a managed instance from now on. */
  agentStarted(host: FleetHost): void | Promise<void>;
  /** The release to deploy, as the user data reads it (the fleet release parameter). */
  release(host: FleetHost): Promise<BootRelease>;
}

export interface LocalFleetOptions {
  /** How many hosts `up()` boots. */
  readonly size: number;
  /** The load balancer's port. */
  readonly balancerPort: number;
  /** Host n (from 0) uses three ports from `firstHostPort + 3n`: Nginx, blue, green. */
  readonly firstHostPort: number;
  /** The most hosts the fleet may grow to (bounds the ports it uses). @default size + 2 */
  readonly maxHosts?: number;
  /** How long each host's engine watches a new release after a switch. @default 0 */
  readonly bakeSeconds?: number;
}

/** One host of the fleet. */
export class FleetHost {
  /** Where the host's own commands live (its `cloud-init` stand-in), first on SSM Agent's PATH. */
  readonly binDir: string;
  private bootState: 'booting' | 'done' | 'failed' = 'booting';

  constructor(
    readonly index: number,
    readonly instanceId: string,
    readonly host: LocalHost,
  ) {
    this.binDir = join(host.dir, 'bin');
  }

  get booted(): boolean {
    return this.bootState === 'done';
  }

  /** The environment SSM Agent runs commands with on this host. */
  agentEnvironment(): Record<string, string> {
    return {
      PATH: `${this.binDir}:${join(PROJECT_DIR, 'assets', 'instance', 'bin')}:${process.env.PATH ?? '/usr/bin:/bin'}`,
      HOME: process.env.HOME ?? '/root',
      BLUEGREEN_CONF: this.host.conf,
      BLUEGREEN_JAVA_OPTS: TEST_JAVA_OPTS,
      // The instance's region, which the document would otherwise ask the instance metadata for.
      AWS_REGION: 'us-east-1',
    };
  }

  /** Writes the host's `cloud-init` stand-in: `status --wait` returns once the boot has ended. */
  installCloudInit(): void {
    mkdirSync(this.binDir, { recursive: true });
    const script = `#!/usr/bin/env bash
# cloud-init stand-in on a local fleet host (scripts/lib/fleet.ts): 'status [--wait]' reports the
# host's boot as cloud-init would: 0 done, 1 error, 'running' until then.
set -euo pipefail
[[ \${1:-} == status ]] || { echo "cloud-init (local fleet stand-in): only 'status [--wait]'" >&2; exit 2; }
while :; do
  if [[ -f ${this.host.dir}/boot-done ]]; then echo 'status: done'; exit 0; fi
  if [[ -f ${this.host.dir}/boot-failed ]]; then echo 'status: error'; exit 1; fi
  [[ \${2:-} == --wait ]] || { echo 'status: running'; exit 0; }
  sleep 0.1
done
`;
    const file = join(this.binDir, 'cloud-init');
    writeFileSync(file, script);
    chmodSync(file, 0o755);
  }

  finishBoot(ok: boolean): void {
    this.bootState = ok ? 'done' : 'failed';
    writeFileSync(join(this.host.dir, ok ? 'boot-done' : 'boot-failed'), new Date().toISOString());
  }
}

/** One line of the load balancer's access log. */
export interface BalancerRequest {
  /** Epoch ms. */
  readonly at: number;
  readonly method: string;
  readonly status: number;
  /** The hosts tried, in order (`127.0.0.1:PORT`); more than one means a retry. */
  readonly upstreams: readonly string[];
  readonly upstreamStatuses: readonly string[];
}

/** A fleet of local hosts behind a local load balancer. */
export class LocalFleet {
  readonly hosts: FleetHost[] = [];
  readonly dir = mkdtempSync(join(tmpdir(), 'bluegreen-fleet-'));
  /** The load balancer: what clients use. */
  readonly url: string;
  /** How long each host's boot took (local-host up to in service), by instance id. */
  readonly bootMs = new Map<string, number>();

  private readonly balancerDir = join(this.dir, 'balancer');

  constructor(private readonly options: LocalFleetOptions) {
    this.url = `http://127.0.0.1:${options.balancerPort}`;
  }

  /** Starts the load balancer and boots `size` hosts, one after the other. */
  async up(boot: HostBoot): Promise<this> {
    this.startBalancer();
    for (let n = 0; n < this.options.size; n += 1) await this.addHost(boot);
    return this;
  }

  /**
   * Boots one more host, as the Auto Scaling group launches one: Nginx up, SSM Agent registers,
   * the recorded release deployed, then into the load balancer. Throws (leaving the host out of
   * the load balancer, as a failing health check would) when the deploy fails.
   */
  async addHost(boot: HostBoot): Promise<FleetHost> {
    const index = this.hosts.length;
    const maxHosts = this.options.maxHosts ?? this.options.size + 2;
    if (index >= maxHosts) throw new Error(`the fleet has ports for ${maxHosts} hosts (maxHosts); ${index + 1} asked for`);
    const started = performance.now();
    const base = this.options.firstHostPort + 3 * index;
    // As on EC2 (the fleet's first boot sets it): no client keep-alive behind the load balancer.
    const host = new LocalHost({ nginx: base, blue: base + 1, green: base + 2 }, join(this.dir, `host-${index}`), this.options.bakeSeconds ?? 0, '0');
    const fleetHost = new FleetHost(index, fleetInstanceId(index), host);
    this.hosts.push(fleetHost);
    host.up();
    fleetHost.installCloudInit();
    await boot.agentStarted(fleetHost);
    let result: RunResult;
    try {
      const release = await boot.release(fleetHost);
      const args = ['deploy', release.artifactUri, '--sha256', release.sha256, ...(release.version === '' ? [] : ['--version', release.version])];
      result = await host.run(args, { PATH: fleetHost.agentEnvironment().PATH! });
    } catch (error) {
      fleetHost.finishBoot(false);
      throw error;
    }
    fleetHost.finishBoot(result.code === 0);
    if (result.code !== 0) throw new Error(`host ${fleetHost.instanceId} failed its first deploy (exit ${result.code}): ${result.stderr}`);
    this.writeBalancerConfig();
    await this.reloadBalancer();
    this.bootMs.set(fleetHost.instanceId, Math.round(performance.now() - started));
    return fleetHost;
  }

  /** What the load balancer answered, oldest first. */
  balancerLog(): BalancerRequest[] {
    const file = join(this.balancerDir, 'access.log');
    if (!existsSync(file)) return [];
    return readFileSync(file, 'utf8')
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => {
        const [msec, method, status, upstreams, upstreamStatuses] = line.split('\t');
        const list = (text: string | undefined) => (text === undefined || text === '-' ? [] : text.split(/, | : /));
        return { at: Math.round(Number(msec) * 1000), method: method!, status: Number(status), upstreams: list(upstreams), upstreamStatuses: list(upstreamStatuses) };
      });
  }

  /**
   * What the Nginx processes logged as errors: the balancer's and each host's, with where each
   * line came from; for a test that has to say why a request failed.
   */
  errorLogs(): string {
    const files = [
      ['balancer', join(this.balancerDir, 'error.log')],
      ...this.hosts.map((fleetHost) => [fleetHost.instanceId, join(fleetHost.host.dir, 'nginx', 'logs', 'error.log')]),
    ];
    return files
      .filter(([, file]) => existsSync(file!))
      .flatMap(([name, file]) =>
        readFileSync(file!, 'utf8')
          .split('\n')
          .filter((line) => /\[(error|crit|alert|emerg)\]/.test(line))
          .slice(-20)
          .map((line) => `${name}: ${line}`),
      )
      .join('\n');
  }

  async down(): Promise<void> {
    this.stopBalancer();
    for (const fleetHost of this.hosts) fleetHost.host.down();
    rmSync(this.dir, { recursive: true, force: true });
  }

  private nginx(args: string[]): void {
    const result = spawnSync('nginx', ['-p', this.balancerDir, '-c', join(this.balancerDir, 'nginx.conf'), '-e', join(this.balancerDir, 'error.log'), ...args], {
      encoding: 'utf8',
    });
    if (result.status !== 0) throw new Error(`load balancer nginx ${args.join(' ')} failed: ${result.stderr}`);
  }

  private startBalancer(): void {
    mkdirSync(join(this.balancerDir, 'tmp'), { recursive: true });
    this.writeBalancerConfig();
    this.nginx(['-t', '-q']);
    this.nginx([]);
  }

  private async reloadBalancer(): Promise<void> {
    const pidFile = join(this.balancerDir, 'nginx.pid');
    const generation = readFileSync(join(this.balancerDir, 'generation'), 'utf8').trim();
    this.nginx(['-t', '-q']);
    process.kill(Number(readFileSync(pidFile, 'utf8').trim()), 'SIGHUP');
    // A reload is asynchronous: wait until a new worker answers with this configuration.
    await waitFor(async () => {
      const answer = await fetch(`${this.url}/__balancer/generation`, { headers: { connection: 'close' } }).catch(() => undefined);
      return (await answer?.text())?.trim() === generation;
    }, 'the load balancer to load its new configuration');
  }

  private stopBalancer(): void {
    const pidFile = join(this.balancerDir, 'nginx.pid');
    if (!existsSync(pidFile)) return;
    const pid = Number(readFileSync(pidFile, 'utf8').trim());
    try {
      process.kill(pid, 'SIGQUIT');
    } catch {
      return;
    }
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline) {
      try {
        process.kill(pid, 0);
      } catch {
        return;
      }
      spawnSync('sleep', ['0.05']);
    }
    process.kill(pid, 'SIGKILL');
  }

  /** The load balancer's configuration: the hosts that passed their boot, round robin. */
  private writeBalancerConfig(): void {
    const inService = this.hosts.filter((fleetHost) => fleetHost.booted);
    const generation = String(Date.now());
    writeFileSync(join(this.balancerDir, 'generation'), generation);
    const servers =
      inService.length === 0
        ? ['        server 127.0.0.1:1 down;']
        : inService.map((fleetHost) => `        server 127.0.0.1:${fleetHost.host.ports.nginx} max_fails=1 fail_timeout=2s;`);
    const temp = join(this.balancerDir, 'tmp');
    const config = `# The local fleet's load balancer stand-in (scripts/lib/fleet.ts); rewritten when a host joins.
${process.getuid?.() === 0 ? 'user root;' : ''}
worker_processes 1;
pid ${join(this.balancerDir, 'nginx.pid')};
error_log ${join(this.balancerDir, 'error.log')} warn;
worker_shutdown_timeout 30s;

events {
    worker_connections 4096;
}

http {
    client_body_temp_path ${temp}/client_body;
    proxy_temp_path ${temp}/proxy;
    fastcgi_temp_path ${temp}/fastcgi;
    uwsgi_temp_path ${temp}/uwsgi;
    scgi_temp_path ${temp}/scgi;
    log_format fleet '$msec\\t$request_method\\t$status\\t$upstream_addr\\t$upstream_status';
    access_log ${join(this.balancerDir, 'access.log')} fleet;
    keepalive_timeout 65s;
    client_max_body_size 50m;

    upstream fleet {
${servers.join('\n')}
        keepalive 32;
    }

    server {
        listen 127.0.0.1:${this.options.balancerPort};

        location = /__balancer/generation {
            access_log off;
            return 200 "${generation}\\n";
        }

        location / {
            proxy_pass http://fleet;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            # Idempotent requests only, once sent (Nginx's default without non_idempotent).
            proxy_next_upstream error timeout http_502 http_503 http_504;
            proxy_next_upstream_tries 3;
            proxy_connect_timeout 2s;
            proxy_read_timeout 60s;
        }
    }
}
`;
    writeFileSync(join(this.balancerDir, 'nginx.conf'), config);
  }
}

/** Instance ids of the local fleet, in the order hosts boot (and SSM sorts them). */
export function fleetInstanceId(index: number): string {
  return `i-0f1ee7${String(index + 1).padStart(11, '0')}`;
}

/**
 * Reads the fleet release parameter as the user data does (`aws ssm get-parameter`) and parses
 * it with the shared parser; `first` when no release is recorded yet.
 */
export async function recordedRelease(ssm: SSMClient, parameterName: string, first: BootRelease): Promise<BootRelease> {
  const answer = await ssm.send(new GetParameterCommand({ Name: parameterName }));
  const recorded = parseFleetRelease(answer.Parameter?.Value);
  return recorded === undefined ? first : { artifactUri: recorded.artifactUri, sha256: recorded.sha256, version: recorded.version };
}
