/** The home actor's state, messages and replies (plain JSON data). */
import type { DecisionEntry, DecisionLog } from './rules/decision-log.ts';
import type { ConditionResult, TriggerMatch } from './rules/rule-evaluator.ts';
import type { GeoLocation, Rule, Scene, Suspension } from './rules/rule-types.ts';
import type { CommandBudget } from './rules/storm-control.ts';
import type { DeviceChanged, DeviceChanges, DeviceValues, Outcome, Value } from './types.ts';

/**
 * What the home knows of a device: its type and hub (its values are in `HomeState.values`).
 * State written before watches also holds every reported value in `attributes`; the home drops it
 * when it loads such a state.
 */
export interface DeviceRecord {
  readonly type: string;
  readonly hubId?: string;
}

export interface HubRecord {
  /** Hash of the hub's secret; the secret itself is shown once at registration and never kept. */
  readonly secretHash?: string;
  /** Epoch ms. */
  readonly createdAt: number;
  /** Epoch ms of the last secret rotation, if any. */
  readonly rotatedAt?: number;
}

/** Storm-control status of a rule. recentFirings: epoch ms of firings within the re-trigger window. */
export interface RuleStatus {
  readonly suspended?: Suspension;
  readonly recentFirings: readonly number[];
  /**
   * The rule's last decision, when it was `condition_false`: when (epoch ms) and its verdicts (see
   * `verdictKey`). The same verdicts again within a minute are not logged; any other decision of
   * the rule clears it. Absent in state written before.
   */
  readonly conditionFalse?: { readonly at: number; readonly verdicts: string };
}

/**
 * A firing of a `queued` rule waiting for the rule's running run to end: it starts then, with the
 * conditions it passed when it fired. `at`: epoch ms it fired.
 */
export interface QueuedFiring {
  readonly at: number;
  readonly trigger: TriggerMatch;
  readonly depth: number;
  readonly conditions: readonly ConditionResult[];
}

/** State of `home:{homeId}`. JSON-serializable: snapshots are JSON. */
export interface HomeState {
  readonly homeId: string;
  /** False until the first `home.upsert`, and again once deleted. */
  readonly exists: boolean;
  /**
   * Set by `home.delete`: everything else is as in a home never created (but `nextCommandSeq`,
   * kept so that command ids never repeat), and what devices and hubs still tell the home (a late
   * report or hello) is refused with not_found instead of bringing them back. The next
   * `home.upsert` creates the home anew.
   */
  readonly deleted?: true;
  readonly name: string;
  /** IANA time zone of time conditions and schedule triggers; 'UTC' by default. */
  readonly timezone: string;
  /** Where the home is, for sun triggers (a home without one holds no sun rule). */
  readonly location?: GeoLocation;
  readonly devices: Readonly<Record<string, DeviceRecord>>;
  /**
   * Latest values of the attributes the rules' conditions read, per device id: only those (see
   * `rules/rule-interest.ts`), so a change no condition reads leaves the state as it was. Absent in
   * state written before watches (the home derives it when it loads such a state).
   */
  readonly values: Readonly<Record<string, Readonly<Record<string, Value>>>>;
  /**
   * Set while a home loaded from state written before watches still keeps every reported value
   * (the old mirror), until its journaled `home.upgrade` (see `rules/home-upgrade.ts`).
   */
  readonly mirror?: true;
  readonly hubs: Readonly<Record<string, HubRecord>>;
  readonly rules: Readonly<Record<string, Rule>>;
  readonly ruleStatus: Readonly<Record<string, RuleStatus>>;
  readonly scenes: Readonly<Record<string, Scene>>;
  readonly decisions: DecisionLog;
  readonly budget: CommandBudget;
  /** Seq of the next command id the home issues (`r-{ruleId}-{seq}`, `s-{sceneId}-{seq}`). */
  readonly nextCommandSeq: number;
  /**
   * Number of the next run of a rule with delays (its reminder is `run.{ruleId}.{no}`); absent: 1.
   * Runs waiting in a delay are the home's pending `run.*` reminders, not kept here.
   */
  readonly nextRunNo?: number;
  /** Firings of `queued` rules waiting for their rule's run to end, oldest first, per rule id. */
  readonly runQueues?: Readonly<Record<string, readonly QueuedFiring[]>>;
}

/** Messages to the home actor; `unknown` payloads are validated by the reducer. */
export type HomeMsg =
  /**
   * Create or update the home; `timezone` and `location` keep their value (or 'UTC', none) when
   * omitted; `location: null` removes it (refused while a sun rule needs it).
   */
  | { readonly type: 'home.upsert'; readonly name: unknown; readonly timezone?: unknown; readonly location?: unknown }
  | { readonly type: 'home.get' }
  | { readonly type: 'home.registerHub'; readonly hubId: unknown; readonly secretHash: unknown }
  | { readonly type: 'home.hubs' }
  /**
   * Records a hub's new secret digest; answers the one it replaces. With `previousValidUntil`
   * (epoch ms: the end of the old secrets' grace period, or now for none) the home also tells the
   * hub actor (`hub.secretRotated`), which refuses the secrets `retire` (credential ids, see
   * `hubCredentialIdOf`: those the rotation retires in the credential store) from then on and ends
   * a stream still open on one of them then. Without `retire` (a caller of an older release) the
   * hub actor is told to keep only the new secret.
   */
  | {
      readonly type: 'home.rotateHubSecret';
      readonly hubId: unknown;
      readonly secretHash: unknown;
      readonly previousValidUntil?: unknown;
      readonly retire?: unknown;
    }
  /** Forgets a hub and tells its actor `hub.remove` (its open stream ends); its devices stay known. */
  | { readonly type: 'home.removeHub'; readonly hubId: unknown }
  /**
   * Deletes the home: tells each device `device.remove` and each hub `hub.remove`, erases the
   * home's state and keeps only the `deleted` mark. Answers the hubs it had (their secrets are the
   * caller's to remove).
   */
  | { readonly type: 'home.delete' }
  /**
   * A page of devices sorted by id: limit 1..200 (default 50); `cursor` is the opaque
   * `nextCursor` of the previous page (absent = from the start).
   */
  | { readonly type: 'home.devices'; readonly limit?: unknown; readonly cursor?: unknown }
  /** A hub announced a device (hello): records its type and hub. */
  | { readonly type: 'device.attached'; readonly deviceId: string; readonly deviceType: string; readonly hubId: string }
  | DeviceChanged
  | DeviceChanges
  | DeviceValues
  /** The home tells itself this to leave the old mirror behind (see `rules/home-upgrade.ts`). */
  | { readonly type: 'home.upgrade' }
  | { readonly type: 'rules.list' }
  | { readonly type: 'rules.get'; readonly ruleId: string }
  | { readonly type: 'rules.put'; readonly rule: unknown }
  | { readonly type: 'rules.delete'; readonly ruleId: string }
  /** Clears a storm-control suspension. */
  | { readonly type: 'rules.resume'; readonly ruleId: string }
  | { readonly type: 'scenes.list' }
  | { readonly type: 'scenes.get'; readonly sceneId: string }
  | { readonly type: 'scenes.put'; readonly scene: unknown }
  | { readonly type: 'scenes.delete'; readonly sceneId: string }
  /** Runs a scene for the app (source app; depth defaults to 0); consumes command budget. */
  | { readonly type: 'scenes.activate'; readonly sceneId: string; readonly depth?: number }
  /** Newest first; limit 1..200, default 50; only those of rule `rule` and/or outcome `outcome` when set. */
  | { readonly type: 'decisions.list'; readonly limit?: unknown; readonly rule?: unknown; readonly outcome?: unknown };

/** The home in brief. */
export interface HomeSummary {
  readonly homeId: string;
  readonly name: string;
  readonly timezone: string;
  readonly location?: GeoLocation;
  readonly devices: readonly DeviceBrief[];
  readonly hubs: readonly string[];
  readonly ruleCount: number;
  readonly sceneCount: number;
}

/** A device in brief, as listed by `home.devices` and `home.get`. */
export interface DeviceBrief {
  readonly deviceId: string;
  readonly type: string;
  readonly hubId?: string;
}

/** One page of devices; `nextCursor` is absent on the last page. */
export interface DevicePage {
  readonly items: readonly DeviceBrief[];
  readonly nextCursor?: string;
}

export interface HubView extends HubRecord {
  readonly hubId: string;
}

/** A rule as served to apps: the rule plus why it is suspended, if it is. */
export type RuleView = Rule & { readonly suspended?: Suspension };

/** Reply value per message type (every reply is an Outcome of it). */
export interface HomeReplies {
  'home.upsert': { readonly created: boolean; readonly home: HomeSummary };
  'home.get': HomeSummary;
  'home.registerHub': HubView;
  'home.hubs': HubView[];
  'home.rotateHubSecret': { readonly hubId: string; readonly previousSecretHash?: string };
  'home.removeHub': { readonly hubId: string; readonly secretHash?: string };
  'home.delete': { readonly homeId: string; readonly hubs: HubView[] };
  'home.devices': DevicePage;
  'device.attached': { readonly deviceId: string };
  /** decisions: entries appended to the decision log by this change. */
  'device.changed': { readonly decisions: number };
  /** decisions: entries appended to the decision log by the whole batch. */
  'device.changes': { readonly decisions: number };
  'home.upgrade': null;
  'device.values': null;
  'rules.list': RuleView[];
  'rules.get': RuleView;
  'rules.put': { readonly created: boolean; readonly rule: RuleView };
  'rules.delete': { readonly ruleId: string };
  'rules.resume': RuleView;
  'scenes.list': Scene[];
  'scenes.get': Scene;
  'scenes.put': { readonly created: boolean; readonly scene: Scene };
  'scenes.delete': { readonly sceneId: string };
  'scenes.activate': { readonly sceneId: string; readonly commands: readonly { readonly commandId: string; readonly device: string }[] };
  'decisions.list': DecisionEntry[];
}

export type HomeReply = Outcome<HomeReplies[keyof HomeReplies]>;
