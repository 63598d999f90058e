/** Topics of the `publish` effects (a home's event feed, SSE) that the node reads too: its automation metrics count them. */

/** A rule decision was logged (actors/rules/rule-runs.ts); data: the decision log entry. */
export const DECISION_TOPIC = 'decision';

/** A command was issued or changed status (actors/device-commands.ts); data: the command record and its device id. */
export const COMMAND_STATUS_TOPIC = 'command.status';
