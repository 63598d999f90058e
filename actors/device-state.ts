/** The device actor's state, messages, replies and limits (plain JSON data), shared by `device.ts` and `device-commands.ts`. */
import type { CommandStatus, DeviceWatchMsg, IssueCommand, Outcome, Value } from './types.ts';

/** Limits of the shadow. */
export const DEVICE_LIMITS = {
  /** Reports one `report.batch` may carry. */
  reportBatch: 1_000,
  /** Desired attributes one device keeps. */
  desiredAttributes: 256,
  /**
   * Reported attributes one device keeps: a report that would add more is refused (found probing:
   * a hub adding 64 new 1 KB attributes per report grew one shadow to 250 MB, and reading it
   * blocked its node for seconds). With text values of at most 1 KB, a shadow stays under ~300 KB.
   */
  reportedAttributes: 256,
  /** Applied seqs remembered to tell a duplicate report from a stale one. */
  seqWindow: 32,
} as const;

/** Limits of the command lifecycle. */
export const COMMAND_LIMITS = {
  /** ttlMs upper bound: one day in milliseconds. */
  maxTtlMs: 86_400_000,
  /** Commands kept per device; the oldest terminal ones are dropped first, live ones never. */
  history: 100,
  /** Milliseconds after a rule's command succeeds during which reports carry its causal depth. */
  causalWindowMs: 5_000,
  /**
   * A command result's size as JSON, in UTF-8 bytes (`{"level":42}` is 12): with `history`
   * results kept, a device's commands stay under ~400 KB of results.
   */
  resultBytes: 4_096,
  /**
   * Milliseconds after a command went `sent` that its device checks it: still `sent` (no result)
   * while its hub's stream is open, and no later command of the device sent since, it is sent down
   * again under the same id (the send may have been lost with a node that died; a stream writes an
   * id once and the hub dedupes by id). The interval doubles after each re-send (3, 6, 12 s), for at
   * most `resendLimit` re-sends; a check never comes after the expiry.
   */
  resendAfterMs: 3_000,
  /**
   * Re-sends of one `sent` command by its checks, at most (3 + 6 + 12 s covers a failover and the
   * 10 s routing budget); past them the hub's next hello sends it again. Later re-sends would be
   * no-ops all but always (a stream writes an id once; a new stream has the hello re-send it) yet
   * cost a journal entry, a reminder write, a hub lookup and a forward each.
   */
  resendLimit: 3,
} as const;

/** One reported attribute: its value and the hub timestamp (epoch ms) of the report that set it. */
export interface ReportedValue {
  readonly value: Value;
  readonly ts: number;
}

/** A command's record; times are epoch ms. `issueNo` is its 1-based position in this device's issue order. */
export interface CommandRecord {
  readonly commandId: string;
  readonly name: string;
  readonly params: Readonly<Record<string, Value>>;
  readonly status: CommandStatus;
  readonly createdAt: number;
  /** Epoch ms after which the command is expired if not completed. */
  readonly expiresAtMs: number;
  readonly depth: number;
  readonly source: IssueCommand['source'];
  readonly issueNo: number;
  readonly sentAt?: number;
  readonly completedAt?: number;
  readonly error?: string;
  /** What the hub said the command produced (its `command_result.result`), when it said anything. */
  readonly result?: Readonly<Record<string, Value>>;
}

/** When a `sent` command is checked next (epoch ms) and how often it was re-sent so far. */
export interface CommandResend {
  readonly at: number;
  readonly n: number;
}

/**
 * Device actor state, plain JSON. `lastSeq` is the highest hub seq applied (0 = none); `recentSeqs`
 * the last `seqWindow` applied seqs, ascending. `causal.untilMs` and `lastSeen` are epoch ms.
 * `hubOnline` says the serving hub's stream is open; `online` that the device reported since then.
 */
export interface DeviceState {
  readonly homeId: string;
  readonly deviceId: string;
  readonly hubId?: string;
  readonly type?: string;
  readonly capabilities: readonly string[];
  readonly reported: Readonly<Record<string, ReportedValue>>;
  readonly desired: Readonly<Record<string, Value>>;
  /**
   * Increments on every change of reported values or desired, and on removal: the removed mark
   * keeps it and a device created anew goes on from it (never back to 0).
   */
  readonly version: number;
  readonly online: boolean;
  readonly hubOnline: boolean;
  /**
   * The hub was last sent a non-empty desired delta for the device (it may be heading for that
   * target); cleared when it is sent an empty one. A connect then sends the delta even when empty.
   */
  readonly hubHasDelta?: true;
  readonly lastSeen?: number;
  readonly lastSeq: number;
  readonly recentSeqs: readonly number[];
  /**
   * The incarnation of hub `hubId` whose seqs `lastSeq` and `recentSeqs` count (see
   * `DeviceAttach.hubIncarnation`); absent in states from before it existed, and until an attach said it.
   */
  readonly hubIncarnation?: number;
  readonly commands: Readonly<Record<string, CommandRecord>>;
  /**
   * The delivery checks of `sent` commands by command id, once they moved from the first one:
   * `at` (epoch ms) the next check, `n` the re-sends so far (`n` 0: reset by a hub's reconnect,
   * which sent them again; at `COMMAND_LIMITS.resendLimit` no check is left). A `sent` command
   * without one is checked at `sentAt + COMMAND_LIMITS.resendAfterMs`. Absent when empty; entries
   * leave with their command's result, expiry or removal.
   */
  readonly resends?: Readonly<Record<string, CommandResend>>;
  readonly causal?: { readonly depth: number; readonly untilMs: number };
  /**
   * What the home's rules read of this device (sorted names), set by `device.watch`. Absent until
   * the home has told it (a new device, or state from before watches): every change is forwarded.
   */
  readonly watch?: { readonly attributes: readonly string[]; readonly events: readonly string[]; readonly values: readonly string[] };
  /**
   * Set by `device.remove` (its home was deleted): the rest is as in a device never written, and
   * every message but a hub's `device.attach` (which starts the device afresh) is refused or ignored,
   * so a report still in flight cannot bring the old device back.
   */
  readonly removed?: true;
}

/**
 * From the hub actor when the hub says hello: which hub serves the device, and what it is.
 * `hubIncarnation` counts the hub's registrations anew after a removal (0: never removed): a hub
 * of another id or incarnation numbers its reports from its own seq 1, so the device restarts
 * its seq order. Absent in journal entries of older releases, which replay as they ran then
 * (the order is kept).
 */
export interface DeviceAttach {
  readonly type: 'device.attach';
  readonly hubId: string;
  readonly deviceType: string;
  readonly capabilities: readonly string[];
  readonly hubIncarnation?: number;
}
/** The hub's stream opened or closed; `hubId`, when given, must be the device's hub or it is ignored. */
export interface HubConnection {
  readonly type: 'hub.connection';
  readonly online: boolean;
  readonly hubId?: string;
}
/** A report from the hub: `seq` is the hub's sequence number (>= 1), `tsMs` the hub's clock in epoch ms. */
export interface Report {
  readonly type: 'report';
  readonly seq: number;
  readonly tsMs: number;
  readonly attributes: Readonly<Record<string, Value>>;
  readonly event?: string;
}
/** Several reports of this device from one hub batch, in seq order: one step, one journal entry. */
export interface ReportBatch {
  readonly type: 'report.batch';
  readonly items: readonly Omit<Report, 'type'>[];
}
export interface ShadowGet {
  readonly type: 'shadow.get';
}
/** Merge into `desired`; `null` removes a key. `ifVersion`: fail with version_conflict unless it is the version. */
export interface SetDesired {
  readonly type: 'shadow.setDesired';
  readonly desired: Readonly<Record<string, Value | null>>;
  readonly ifVersion?: number;
}
/**
 * The hub ran (ok) or could not run a command; `result`: what it produced (limits as for report
 * attributes, and at most `COMMAND_LIMITS.resultBytes` of JSON).
 */
export interface CommandResult {
  readonly type: 'command.result';
  readonly commandId: string;
  readonly ok: boolean;
  readonly error?: string;
  readonly result?: Readonly<Record<string, Value>>;
}
export interface CommandGet {
  readonly type: 'command.get';
  readonly commandId: string;
}
/**
 * The device's wake-up (`nextWakeAt`): expire every queued/sent command whose expiresAtMs <=
 * ctx.now, then, while the hub's stream is open, send again the `sent` ones whose check is due.
 */
export interface CommandExpire {
  readonly type: 'command.expire';
}
/** The device's home was deleted: erase the device and keep only the `removed` mark. */
export interface DeviceRemove {
  readonly type: 'device.remove';
}
export type DeviceMsg =
  | DeviceRemove
  | DeviceAttach
  | HubConnection
  | Report
  | ReportBatch
  | ShadowGet
  | SetDesired
  | IssueCommand
  | CommandResult
  | CommandGet
  | CommandExpire
  | DeviceWatchMsg;

/** Reply to a report: a report at or below lastSeq is acknowledged but not applied. */
export interface ReportAck {
  readonly applied: boolean;
  readonly reason?: 'duplicate' | 'stale';
  readonly version: number;
}
/** Reply to a report batch: one outcome per item, in order (an invalid item fails alone). */
export interface ReportBatchAck {
  readonly results: readonly Outcome<ReportAck>[];
}
/** The shadow as apps read it; `delta` = desired keys whose value differs from the reported one. */
export interface Shadow {
  readonly deviceId: string;
  readonly type: string | null;
  readonly capabilities: readonly string[];
  readonly reported: Readonly<Record<string, ReportedValue>>;
  readonly desired: Readonly<Record<string, Value>>;
  readonly delta: Readonly<Record<string, Value>>;
  readonly version: number;
  readonly online: boolean;
  /** Epoch ms of the last applied report, null if none. */
  readonly lastSeen: number | null;
}
/** Reply to command.expire: the ids that expired, and those sent again, in issue order. */
export interface ExpireResult {
  readonly expired: readonly string[];
  readonly resent?: readonly string[];
}
/** Reply value per message type (every reply is an Outcome of it). */
export interface DeviceReplies {
  'device.attach': null;
  'hub.connection': null;
  report: ReportAck;
  'report.batch': ReportBatchAck;
  'shadow.get': Shadow;
  'shadow.setDesired': Shadow;
  'command.issue': CommandRecord;
  'command.result': CommandRecord;
  'command.get': CommandRecord;
  'command.expire': ExpireResult;
  'device.watch': null;
  'device.remove': null;
}

export type DeviceReply = Outcome<DeviceReplies[keyof DeviceReplies]>;
