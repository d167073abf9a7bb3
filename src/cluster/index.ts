export * from './capabilities.js';
export * from './client.js';
export * from './errors.js';
export { redactUrl } from './redact.js';
export * from './retry.js';
export * from './transport.js';
