// The engine's public surface: what the controller, the CLI and benchmarks use.
export { runEngine, type RunOptions } from './run.js';
export { createClients, type Clients, type RequestEvent, type RequestObserver } from './clients.js';
export { JobError } from './errors.js';
export { validatePlan } from './validate.js';
export * from './types.js';
export { Budget } from './budget.js';
export { estimateCost, type CostBasis } from './cost.js';
