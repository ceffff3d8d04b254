// Smoke test of the kube harness: a real etcd + kube-apiserver with RBAC.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OPERATOR_USER, startKube, type KubeEnv } from './kube.js';

describe('kube harness', () => {
  let workDir = '';
  let kube: KubeEnv | undefined;

  const env = (): KubeEnv => {
    if (kube === undefined) throw new Error('kube env did not start');
    return kube;
  };

  beforeAll(async () => {
    workDir = await mkdtemp(join(tmpdir(), 's3eo-kube-smoke-'));
    kube = await startKube({ workDir });
  }, 180_000);

  afterAll(async () => {
    await kube?.stop();
    if (workDir !== '') await rm(workDir, { recursive: true, force: true });
  }, 60_000);

  it('serves the API over HTTPS on 127.0.0.1', () => {
    expect(env().server).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
  });

  it('lets the admin create a namespace', async () => {
    await env().kubectl(['create', 'namespace', 'smoke']);
    const got = await env().kubectl(['get', 'namespace', 'smoke', '-o', 'jsonpath={.status.phase}']);
    expect(got.stdout).toBe('Active');
    const apply = await env().kubectl(['apply', '-f', '-'], {
      input: 'apiVersion: v1\nkind: Secret\nmetadata:\n  name: s1\n  namespace: smoke\nstringData:\n  k: v\n',
    });
    expect(apply.stdout).toContain('secret/s1');
  });

  it('authenticates the operator as its ServiceAccount user without extra groups', async () => {
    const who = await env().kubectl(['auth', 'whoami', '-o', 'json'], { kubeconfig: env().operatorKubeconfig });
    const review = JSON.parse(who.stdout) as { status: { userInfo: { username: string; groups?: string[] } } };
    expect(review.status.userInfo.username).toBe(OPERATOR_USER);
    expect(review.status.userInfo.groups ?? []).toEqual(['system:authenticated']);
  });

  it('forbids the operator, which has no RBAC yet, to list secrets', async () => {
    const canI = await env().kubectl(['auth', 'can-i', 'list', 'secrets', '-n', 'smoke'], {
      kubeconfig: env().operatorKubeconfig,
      allowFailure: true,
    });
    expect(canI.stdout.trim()).toBe('no');
    expect(canI.code).not.toBe(0);

    const list = await env().kubectl(['get', 'secrets', '-n', 'smoke'], {
      kubeconfig: env().operatorKubeconfig,
      allowFailure: true,
    });
    expect(list.code).not.toBe(0);
    expect(list.stderr).toContain('Forbidden');
    await expect(
      env().kubectl(['get', 'secrets', '-n', 'smoke'], { kubeconfig: env().operatorKubeconfig }),
    ).rejects.toThrow(/forbidden/i);
  });

  it('keeps its data across an apiserver restart on the same port', async () => {
    const before = env().server;
    await env().restartApiserver();
    expect(env().server).toBe(before);
    const got = await env().kubectl(['get', 'secret', 's1', '-n', 'smoke', '-o', 'jsonpath={.data.k}']);
    expect(Buffer.from(got.stdout, 'base64').toString('utf8')).toBe('v');
  }, 180_000);
});
