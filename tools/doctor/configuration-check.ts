/** Doctor's `configuration` check: the node's environment passes the node's own validation (node/config.ts, and the OTEL_* variables as node/tracing-plan.ts reads them). */
import { loadConfig, type NodeConfig } from '../../node/config.ts';
import { tracingPlan } from '../../node/tracing-plan.ts';
import { fail, messageOf, ok, type CheckResult } from './check-result.ts';

/** The check line, and the configuration when it is valid (doctor takes the cluster name from it). */
export function configurationCheck(env: Readonly<Record<string, string | undefined>>): {
  check: CheckResult;
  config: NodeConfig | undefined;
} {
  try {
    const config = loadConfig(env);
    const tracing = tracingPlan(env);
    const store = config.redisUrl === undefined ? 'memory (not durable, one node)' : 'Redis';
    return {
      check: ok(
        'configuration',
        `valid: node ${config.nodeId}, cluster ${config.cluster}, roles ${config.roles.join(',')}, store ${store}, tracing ${tracing.on ? 'on' : 'off'}`,
      ),
      config,
    };
  } catch (err) {
    return {
      check: fail('configuration', `invalid: ${messageOf(err)}`, 'fix that variable: the node refuses to start with it'),
      config: undefined,
    };
  }
}
