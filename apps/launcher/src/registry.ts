import type { ServiceModule } from '@bstore/platform';
import { assignmentService } from '@bstore/assignment';
import { bookService } from '@bstore/book';
import { customercenterService } from '@bstore/customercenter';
import { gatewayService } from '@bstore/gateway';
import { notificationService } from '@bstore/notification';
import { reservationService } from '@bstore/reservation';

/**
 * Every service, in start-up order: a service starts after those it calls (reservation calls
 * book; the gateway calls them all) and stops before them. The hosts (embedded, cluster, one
 * service, migrate) loop over this list and know no service by name: a new service is its folder
 * (with a `module.ts` describing it) and one line here.
 */
export const SERVICES = [bookService, assignmentService, customercenterService, notificationService, reservationService, gatewayService] as const;

export type RegisteredService = (typeof SERVICES)[number];
export type ServiceName = RegisteredService['name'];
/** A registered service's module, by name. */
export type ModuleOf<N extends ServiceName> = Extract<RegisteredService, { name: N }>;
/** What a registered service's `build` takes: its settings, and a host's in-process overrides. */
export type ConfigOf<N extends ServiceName> = Parameters<ModuleOf<N>['build']>[1];
/** What a registered service's `build` makes. */
export type RuntimeOf<N extends ServiceName> = Awaited<ReturnType<ModuleOf<N>['build']>>;

export const SERVICE_NAMES: readonly ServiceName[] = SERVICES.map((m) => m.name);

/** The seed's ports, from the modules. */
export const DEFAULT_PORTS = Object.fromEntries(SERVICES.map((m) => [m.name, m.defaultPort])) as Record<ServiceName, number>;

/** The registry as the hosts loop over it: modules of any settings and runtime. */
export const MODULES: readonly ServiceModule[] = SERVICES;

/** The module named `name`, or undefined. */
export function moduleNamed(name: string): ServiceModule | undefined {
  return MODULES.find((m) => m.name === name);
}

/** The variable another service reads this one's URL from (`BOOK_URL`), the same name in every mode. */
export const urlVariableOf = (name: string): string => `${name.toUpperCase()}_URL`;

