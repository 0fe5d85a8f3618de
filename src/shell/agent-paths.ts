import type { GatewayConfig } from './config.js';

/** The session agent's socket: in the sessions directory, which only the service user may enter. */
export function agentSocketPath(config: Pick<GatewayConfig, 'sessionsDir'>): string {
  return `${config.sessionsDir.replace(/\/+$/, '')}/agent.sock`;
}
