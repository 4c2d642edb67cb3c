/**
 * How a host's memory is shared out: one budget per kind of host, derived from the instance
 * type's memory, so that no JVM takes the JVM default (a quarter of the machine each) and the
 * kernel's OOM killer, if it must act, picks the build first and the live app last.
 *
 * The budget reaches the host as settings: the app slots' heap and cgroup cap as engine
 * configuration keys (`engineMemorySettings`), Jenkins' heap and the build's allowance as Jenkins
 * settings (`jenkinsMemorySettings`). Plain values, no resources.
 */

/** Which processes share the host (`HostRole` of the boot script). */
export type BudgetRole = 'single' | 'fleet' | 'jenkins';

/** What each process may use, in MiB. `total` is the process's whole footprint: heap and the rest. */
export interface MemoryBudget {
  readonly role: BudgetRole;
  /** The instance's memory. */
  readonly instanceMiB: number;
  /** Kept for the OS, Nginx, the SSM Agent, the engine and page cache. */
  readonly reserveMiB: number;
  /** Per app slot (two of them: the live one and the standby); absent on the fleet's Jenkins. */
  readonly slot?: { readonly heapMiB: number; readonly totalMiB: number };
  /** Jenkins' controller; absent on a fleet's app hosts. */
  readonly jenkins?: { readonly heapMiB: number; readonly totalMiB: number };
  /** A build (Gradle and its test JVMs); absent on a fleet's app hosts. */
  readonly build?: { readonly heapMiB: number; readonly totalMiB: number };
  /** The sum of the parts above; never more than `instanceMiB`. */
  readonly budgetedMiB: number;
}

/** OS, Nginx, SSM Agent, the engine's bash and curl, and a floor of page cache. */
export const RESERVE_MIB = 256;

/**
 * Per process: its share of what the reserve leaves, what a JVM needs beside its heap
 * (metaspace, code cache, threads, GC), and the smallest heap it runs with.
 */
const PROCESS = {
  slot: { nonHeapMiB: 128, minHeapMiB: 128 },
  jenkins: { nonHeapMiB: 192, minHeapMiB: 256 },
  build: { nonHeapMiB: 192, minHeapMiB: 192 },
} as const;
type Process = keyof typeof PROCESS;

/** Each process's share of the memory left after the reserve, by role (slots count twice). */
const SHARES: Readonly<Record<BudgetRole, Partial<Record<Process, number>>>> = {
  single: { slot: 0.25, jenkins: 0.25, build: 0.25 },
  fleet: { slot: 0.5 },
  jenkins: { jenkins: 0.5, build: 0.5 },
};

const ROLE_NAMES: Readonly<Record<BudgetRole, string>> = {
  single: 'the single host (Nginx, two app slots, Jenkins and its build)',
  fleet: "a fleet's app host (Nginx and two app slots)",
  jenkins: "the fleet's Jenkins (Jenkins and its build)",
};

const GRAIN_MIB = 16;
const roundDown = (mib: number) => Math.floor(mib / GRAIN_MIB) * GRAIN_MIB;

/** The least memory `role`'s budget fits in: every process at its smallest heap. */
export function minimumMemoryMiB(role: BudgetRole): number {
  const needs = Object.entries(SHARES[role]).map(([process, share]) => {
    const spec = PROCESS[process as Process];
    return Math.ceil((spec.minHeapMiB + spec.nonHeapMiB) / share! / GRAIN_MIB) * GRAIN_MIB;
  });
  return RESERVE_MIB + Math.max(...needs);
}

/**
 * The budget of `role` on an instance with `instanceMiB` of memory; throws, naming the minimum,
 * when the memory cannot hold it. `owner` and `prop` name what to change in the message.
 */
export function memoryBudget(role: BudgetRole, instanceMiB: number, owner = 'the host', instanceName = `${instanceMiB} MiB`): MemoryBudget {
  const minimum = minimumMemoryMiB(role);
  if (!Number.isInteger(instanceMiB) || instanceMiB < minimum) {
    throw new Error(
      `${owner}: instanceType ${instanceName} has ${instanceMiB} MiB of memory, but ${ROLE_NAMES[role]} needs at least ` +
        `${minimum} MiB (${RESERVE_MIB} MiB for the OS and Nginx, and each JVM its smallest heap and what it needs beside it); ` +
        'nothing was built. Choose an instance type with at least that much memory (t3.small has 2048 MiB, t3.medium 4096).',
    );
  }
  const left = instanceMiB - RESERVE_MIB;
  const part = (process: Process) => {
    const share = SHARES[role][process];
    if (share === undefined) return undefined;
    const totalMiB = roundDown(left * share);
    return { heapMiB: totalMiB - PROCESS[process].nonHeapMiB, totalMiB };
  };
  const slot = part('slot');
  const jenkins = part('jenkins');
  const build = part('build');
  const budgetedMiB = RESERVE_MIB + 2 * (slot?.totalMiB ?? 0) + (jenkins?.totalMiB ?? 0) + (build?.totalMiB ?? 0);
  return { role, instanceMiB, reserveMiB: RESERVE_MIB, slot, jenkins, build, budgetedMiB };
}

/**
 * Memory of the instance types this project knows, in MiB (EC2's published figures). CDK has
 * no offline lookup; for a type not here, pass its memory explicitly (`instanceMemoryMiB`).
 */
const BURSTABLE_SIZES: Readonly<Record<string, number>> = {
  nano: 512, micro: 1024, small: 2048, medium: 4096, large: 8192, xlarge: 16384, '2xlarge': 32768,
};
const VCPUS: Readonly<Record<string, number>> = { large: 2, xlarge: 4, '2xlarge': 8, '4xlarge': 16, '8xlarge': 32 };
const MIB_PER_VCPU: ReadonlyArray<readonly [number, readonly string[]]> = [
  [2048, ['c5', 'c5a', 'c6a', 'c6g', 'c6i', 'c7a', 'c7g', 'c7i', 'c8g']],
  [4096, ['m5', 'm5a', 'm6a', 'm6g', 'm6i', 'm7a', 'm7g', 'm7i', 'm8g']],
  [8192, ['r5', 'r5a', 'r6a', 'r6g', 'r6i', 'r7a', 'r7g', 'r7i', 'r8g']],
];
const BURSTABLE_CLASSES = ['t2', 't3', 't3a', 't4g'];

/** The memory of `instanceType` ('t3.small'), or undefined when this table does not know it. */
export function knownInstanceMemoryMiB(instanceType: string): number | undefined {
  const [instanceClass = '', size = ''] = instanceType.split('.');
  if (BURSTABLE_CLASSES.includes(instanceClass)) return BURSTABLE_SIZES[size];
  const perVcpu = MIB_PER_VCPU.find(([, classes]) => classes.includes(instanceClass))?.[0];
  const vcpus = VCPUS[size];
  return perVcpu === undefined || vcpus === undefined ? undefined : perVcpu * vcpus;
}

/**
 * The instance's memory: `explicitMiB` when given (it wins over the table), else the table's;
 * an unknown type without it is refused, saying what to set.
 */
export function instanceMemoryMiB(instanceType: string, explicitMiB: number | undefined, owner: string): number {
  if (explicitMiB !== undefined) {
    if (!Number.isInteger(explicitMiB) || explicitMiB < 1) {
      throw new Error(`${owner}: instanceMemoryMiB = ${explicitMiB}: give the instance's memory as a whole number of MiB (e.g. 4096 for 4 GiB); nothing was built.`);
    }
    return explicitMiB;
  }
  const known = knownInstanceMemoryMiB(instanceType);
  if (known === undefined) {
    throw new Error(
      `${owner}: instanceType ${instanceType} is not in this project's memory table (lib/memory-budget.ts), so its memory ` +
        'budget cannot be derived; nothing was built. Set instanceMemoryMiB to its memory in MiB (EC2 lists it per type), ' +
        "e.g. '-c instanceMemoryMiB=8192'.",
    );
  }
  return known;
}

/** The budget of a host of `role` running on `instanceType`. */
export function budgetFor(role: BudgetRole, instanceType: string, explicitMiB: number | undefined, owner: string): MemoryBudget {
  return memoryBudget(role, instanceMemoryMiB(instanceType, explicitMiB, owner), owner, instanceType);
}

/**
 * Engine configuration keys for the app slots (assets/instance/lib/memory.sh reads them):
 * `KEY=VALUE` lines the first boot appends to the host's configuration.
 */
export function engineMemorySettings(budget: MemoryBudget): string[] {
  if (budget.slot === undefined) return [];
  return [`BLUEGREEN_SLOT_HEAP_MIB=${budget.slot.heapMiB}`, `BLUEGREEN_SLOT_MEMORY_MIB=${budget.slot.totalMiB}`];
}

/** Jenkins settings keys for its heap and the build's allowance (read by assets/jenkins/configure-jenkins). */
export function jenkinsMemorySettings(budget: MemoryBudget): { jenkinsHeapMiB: string; jenkinsMemoryMiB: string; buildHeapMiB: string; buildMemoryMiB: string } {
  if (budget.jenkins === undefined || budget.build === undefined) {
    throw new Error(`a ${budget.role} host runs no Jenkins: it has no Jenkins memory settings`);
  }
  return {
    jenkinsHeapMiB: String(budget.jenkins.heapMiB),
    jenkinsMemoryMiB: String(budget.jenkins.totalMiB),
    buildHeapMiB: String(budget.build.heapMiB),
    buildMemoryMiB: String(budget.build.totalMiB),
  };
}

/**
 * oom_score_adj of each process (-1000..1000; higher is killed first): the build first, then a
 * slot that is not live (the standby, or a release still starting), then Jenkins; the live slot
 * last. assets/instance/lib/memory.sh and assets/jenkins hold the same numbers; the tests
 * compare them with this table.
 */
export const OOM_SCORE_ADJ = { build: 1000, idleSlot: 500, jenkins: 300, liveSlot: -900 } as const;
