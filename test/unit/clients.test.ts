import { NodeHttpHandler } from '@smithy/node-http-handler';
import type { Agent } from 'node:http';
import { describe, expect, it } from 'vitest';
import { createClients, socketsFor } from '../../src/engine/s3/clients.js';

describe('connection pool', () => {
  it('has a keep-alive socket for every object in flight, never fewer than the SDK default of 50', () => {
    expect(socketsFor(undefined)).toBe(50);
    expect(socketsFor(8)).toBe(50);
    expect(socketsFor(128)).toBe(144);
    expect(socketsFor(256)).toBe(272);
  });

  it('gives S3 and KMS their own tuned keep-alive handler sized for the concurrency', async () => {
    const clients = createClients({ endpoint: 'http://127.0.0.1:9', region: 'us-east-1' }, { concurrency: 200 });
    try {
      const handler = clients.s3.config.requestHandler as NodeHttpHandler;
      expect(handler).toBeInstanceOf(NodeHttpHandler);
      expect(handler).not.toBe(clients.kms.config.requestHandler);
      const config = (await (handler as unknown as { configProvider: Promise<unknown> }).configProvider) as {
        httpAgentProvider: () => Promise<Agent>;
      };
      const agent = await config.httpAgentProvider();
      expect((agent as Agent & { keepAlive?: boolean }).keepAlive).toBe(true);
      expect(agent.maxSockets).toBe(216);
    } finally {
      clients.destroy();
    }
  });
});
