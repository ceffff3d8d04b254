// The engine's public surface: what the controller, the CLI and benchmarks use.
export { runEngine, type RunOptions } from './run.js';
export { createClients, type Clients, type RequestEvent, type RequestObserver } from './s3/clients.js';
export { JobError } from './s3/errors.js';
export { validatePlan } from './validate.js';
export * from './types.js';
export { Budget } from './bookkeeping/budget.js';
export { estimateCost, type CostBasis } from './bookkeeping/cost.js';
