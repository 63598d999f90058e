/** Domain types shared by the device, home and hub actors (pure data, no I/O). */

/** An attribute value, as the hub contract's `Value` oneof: number, flag (bool) or text. */
export type Value = number | boolean | string;

/** A domain failure that a caller can act on; codes are stable and mapped to HTTP/gRPC at the edge. */
export interface DomainError {
  readonly code:
    | 'invalid_argument'
    | 'not_found'
    | 'version_conflict'
    | 'already_exists'
    | 'permission_denied'
    | 'failed_precondition'
    /** A per-home budget is spent (storm control): retry later (HTTP 429). */
    | 'resource_exhausted'
    /** An idempotency key already names a different request (HTTP 409). */
    | 'idempotency_conflict';
  readonly message: string;
  readonly field?: string;
}

export type Outcome<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: DomainError };

/** Command lifecycle: queued → sent → succeeded | failed, or expired from queued/sent. */
export type CommandStatus = 'queued' | 'sent' | 'succeeded' | 'failed' | 'expired';

/** Ask a device actor to run a command on the device (from the app or from a rule). */
export interface IssueCommand {
  readonly type: 'command.issue';
  /** Idempotency key: a second issue with the same id returns the first command unchanged. */
  readonly commandId: string;
  readonly name: string;
  readonly params: Readonly<Record<string, Value>>;
  /** ttlMs: milliseconds until the command expires if the hub has not completed it. */
  readonly ttlMs: number;
  /** Causal depth: 0 from an app, `trigger depth + 1` from a rule (storm control). */
  readonly depth: number;
  /** Who asked: an app call or a rule id. */
  readonly source: { readonly kind: 'app' } | { readonly kind: 'rule'; readonly ruleId: string };
}

/**
 * What a device actor tells its home after a report changed attributes or carried an event. A
 * device that has its home's watch (`filtered`) tells only changes of watched attributes and
 * watched events, and carries only watched attributes; one that has not (state from before
 * watches) tells every change with every attribute.
 */
export interface DeviceChanged {
  readonly type: 'device.changed';
  readonly deviceId: string;
  readonly deviceType: string;
  /** Attributes whose value changed in this report (watched ones, when filtered). */
  readonly changed: Readonly<Record<string, Value>>;
  /** Current reported value after the report of every attribute (every watched one, when filtered). */
  readonly attributes: Readonly<Record<string, Value>>;
  /** Event name carried by the report (`motion_detected`, `double`, ...), if any (and watched, when filtered). */
  readonly event?: string;
  /** True when the device applied its home's watch; absent from a device that has none yet. */
  readonly filtered?: true;
  /** Causal depth of the change: 0 for a spontaneous report, more when a rule's command caused it. */
  readonly depth: number;
  /** Hub timestamp of the report, epoch ms. */
  readonly tsMs: number;
}

/** Several changes of one device, in order (one batch of reports): the home handles them as one step. */
export interface DeviceChanges {
  readonly type: 'device.changes';
  readonly changes: readonly DeviceChanged[];
}

/**
 * From a home to one of its devices: what its rules read of the device, which the device forwards
 * from now on (see `DeviceChanged`). The device answers with `DeviceValues`.
 */
export interface DeviceWatchMsg {
  readonly type: 'device.watch';
  /** Sorted attribute names whose changes the home reads. */
  readonly attributes: readonly string[];
  /** Sorted event names the home reads. */
  readonly events: readonly string[];
  /**
   * Sorted attribute names whose current values travel with every forwarded change, though a
   * change of them alone is not forwarded (conditions of rules this device triggers read them).
   */
  readonly values: readonly string[];
}

/** A device's answer to a watch: the current reported values of its watched `attributes`. */
export interface DeviceValues {
  readonly type: 'device.values';
  readonly deviceId: string;
  readonly attributes: Readonly<Record<string, Value>>;
}

/** A command on its way down to a hub. */
export interface CommandDelivery {
  readonly commandId: string;
  readonly deviceId: string;
  readonly name: string;
  readonly params: Readonly<Record<string, Value>>;
  /** Epoch ms after which the hub must not execute it. */
  readonly expiresAtMs: number;
}

/**
 * A device's desired delta on its way down to its hub: the desired keys whose reported value
 * differs, as of shadow `version` (the device's version counter, increasing).
 */
export interface DesiredDelivery {
  readonly deviceId: string;
  readonly version: number;
  readonly delta: Readonly<Record<string, Value>>;
}

/**
 * Side effects of domain reducers. The host runs them only once the step that produced them is
 * durable; an interpreter outside `actors/` turns them into I/O.
 */
export type DomainEffect =
  /** Deliver `msg` to another actor (fire and forget). */
  | { readonly type: 'tell'; readonly to: string; readonly msg: unknown }
  /** Send a command down the hub's stream, wherever that stream is held. */
  | { readonly type: 'hub.command'; readonly homeId: string; readonly hubId: string; readonly command: CommandDelivery }
  /**
   * Send a device's desired delta (empty: nothing left to do) down the hub's stream, wherever that stream is held
   * (dropped when there is none: the device sends it again when its hub reconnects).
   */
  | ({ readonly type: 'hub.desired'; readonly homeId: string; readonly hubId: string } & DesiredDelivery)
  /** Tell the home's apps something (a rule's notify action, a suspended rule). */
  | { readonly type: 'notify'; readonly homeId: string; readonly message: string; readonly ruleId?: string }
  /** A change apps may follow live (SSE): shadow updates, command status, decisions. */
  | { readonly type: 'publish'; readonly homeId: string; readonly topic: string; readonly data: unknown }
  /**
   * End a hub's stream session `sessionId` on node `nodeId` (superseded by a newer one: ABORTED;
   * the hub was removed, or the secret it authenticated with was retired: UNAUTHENTICATED). Only
   * that session: a newer one is never touched. `at` (epoch ms, retired secrets only): the end of
   * the secret's grace period, which the session enforces with its own timer (at once when past).
   */
  | {
      readonly type: 'hub.session.end';
      readonly homeId: string;
      readonly hubId: string;
      readonly nodeId: string;
      readonly sessionId: string | undefined;
      readonly reason: HubSessionEndReason;
      readonly at?: number;
    };

/** Why a hub's stream is ended from its hub actor. */
export type HubSessionEndReason = 'superseded' | 'removed' | 'secret_retired';

/**
 * Command ids carry their device, so a status read finds the device actor without an index:
 * `<deviceId>~<local>`, where `local` (an app's idempotency key or a rule's sequence) has no `~`.
 */
export const commandIdFor = (deviceId: string, local: string): string => `${deviceId}~${local}`;

/** The device a command id belongs to, or undefined when the id is not of that form. */
export function deviceOfCommand(commandId: string): string | undefined {
  const i = commandId.lastIndexOf('~');
  return i > 0 && i < commandId.length - 1 ? commandId.slice(0, i) : undefined;
}
