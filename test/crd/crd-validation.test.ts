// The EncryptionJob CRD as the API server enforces it (invariant 5: an invalid
// spec is refused, with a message that names the field, before any work).
//
// test/crd/invalid/NN-name.yaml is a corpus of invalid manifests. Each starts with
//   # expect: <JavaScript regular expression>
// matched against kubectl's stderr. A file with one YAML document must be refused
// on create; a file with two documents is an update: the first (valid) document is
// created, applying the second one over it must be refused (immutable fields).
// Manifests carry no namespace: each is applied into this file's namespace.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ROOT, createNamespace, kubectl, type KubectlResult } from '../harness/context.js';

const CORPUS_DIR = join(import.meta.dirname, 'invalid');
const CRD_FILE = join(ROOT, 'crds', 's3encryption.dev_encryptionjobs.yaml');

interface InvalidCase {
  file: string;
  name: string;
  expected: RegExp;
  /** Created first (must be accepted) when the case is an update. */
  original?: string;
  /** The manifest that must be refused. */
  manifest: string;
}

function loadCorpus(): InvalidCase[] {
  return readdirSync(CORPUS_DIR)
    .filter((f) => f.endsWith('.yaml'))
    .sort()
    .map((file) => {
      const text = readFileSync(join(CORPUS_DIR, file), 'utf8');
      const match = /^# expect: (.+)$/m.exec(text.split('\n', 1)[0] ?? '');
      if (!match?.[1]) throw new Error(`${file}: the first line must be "# expect: <regex>"`);
      const docs = text.split(/^---[ \t]*$/m).filter((d) => d.trim() !== '');
      if (docs.length < 1 || docs.length > 2) throw new Error(`${file}: expected one or two YAML documents`);
      const last = docs[docs.length - 1] as string;
      const name = (parse(last) as { metadata?: { name?: string } } | null)?.metadata?.name;
      if (!name) throw new Error(`${file}: the manifest has no metadata.name`);
      return {
        file,
        name,
        expected: new RegExp(match[1]),
        ...(docs.length === 2 ? { original: docs[0] } : {}),
        manifest: last,
      };
    });
}

const corpus = loadCorpus();

function apply(namespace: string, manifest: string): Promise<KubectlResult> {
  return kubectl(['apply', '--validate=strict', '-n', namespace, '-f', '-'], { input: manifest, allowFailure: true });
}

function job(name: string, spec: Record<string, unknown>): string {
  return JSON.stringify({ apiVersion: 's3encryption.dev/v1alpha1', kind: 'EncryptionJob', metadata: { name }, spec });
}

async function getSpec(namespace: string, name: string): Promise<Record<string, unknown>> {
  const out = await kubectl(['get', 'encryptionjob', name, '-n', namespace, '-o', 'json']);
  return (JSON.parse(out.stdout) as { spec: Record<string, unknown> }).spec;
}

describe('EncryptionJob CRD validation (real kube-apiserver)', () => {
  let namespace: string;

  beforeAll(async () => {
    namespace = await createNamespace('crd');
  });

  describe('the invalid corpus', () => {
    it('holds at least 30 manifests with distinct names, each expecting a message that names a spec field', () => {
      expect(corpus.length).toBeGreaterThanOrEqual(30);
      expect(new Set(corpus.map((c) => c.name)).size).toBe(corpus.length);
      for (const c of corpus) {
        expect(c.file, c.file).toMatch(/^\d{2}-[a-z0-9-]+\.yaml$/);
        expect(c.expected.source, c.file).toMatch(/spec/);
      }
    });

    it.concurrent.each(corpus.map((c) => [c.file, c] as const))('refuses %s', async (_file, c) => {
      if (c.original !== undefined) {
        const created = await apply(namespace, c.original);
        expect(created.code, `${c.file}: the original must be accepted: ${created.stderr}`).toBe(0);
      }
      const result = await apply(namespace, c.manifest);
      expect(result.code, `${c.file} was accepted:\n${result.stdout}`).not.toBe(0);
      expect(result.stderr, c.file).toMatch(c.expected);
      if (c.original === undefined) {
        // Refused means not stored, not stored with a warning.
        const get = await kubectl(['get', 'encryptionjob', c.name, '-n', namespace], { allowFailure: true });
        expect(get.code, `${c.file} exists after being refused`).not.toBe(0);
        expect(get.stderr).toMatch(/NotFound|not found/);
      }
    });
  });

  describe('valid manifests', () => {
    it('accepts a minimal AES256 job and fills the defaults', async () => {
      const result = await apply(
        namespace,
        job('valid-minimal', { bucket: 'my-bucket', encryption: { type: 'AES256' } }),
      );
      expect(result.code, result.stderr).toBe(0);
      expect(await getSpec(namespace, 'valid-minimal')).toEqual({
        bucket: 'my-bucket',
        prefix: '',
        encryption: { type: 'AES256' },
        dryRun: false,
        suspend: false,
        concurrency: 32,
        method: 'Auto',
      });
    });

    it('accepts a job with every field and stores it unchanged', async () => {
      const spec = {
        bucket: 'my-bucket.logs-2024',
        prefix: 'logs/2024/',
        encryption: {
          type: 'aws:kms',
          kmsKeyId: 'arn:aws:kms:us-east-1:111122223333:key/0a0a0a0a-0000-4000-8000-00000000000a',
          bucketKeyEnabled: true,
        },
        connection: {
          region: 'us-east-1',
          endpoint: 'http://127.0.0.1:8333',
          kmsEndpoint: 'https://kms.example.com:4599/',
          forcePathStyle: true,
          credentialsSecretRef: { name: 's3-credentials' },
          roleArn: 'arn:aws:iam::111122223333:role/encryptor',
          externalId: 'job-42',
          stsEndpoint: 'https://sts.example.com',
          supportsUpdateObjectEncryption: true,
        },
        dryRun: true,
        suspend: true,
        concurrency: 1024,
        include: ['*.json'],
        exclude: ['tmp/*'],
        maxObjects: 1000,
        method: 'UpdateObjectEncryption',
        maxRequestsPerSecond: 500,
        storageClass: 'STANDARD_IA',
        report: { destination: 's3://reports-bucket/runs/1.csv', all: true },
        parallelism: 4,
        source: { inventory: { manifest: 's3://inventory-bucket/my-bucket.logs-2024/config/manifest.json' } },
      };
      const result = await apply(namespace, job('valid-full', spec));
      expect(result.code, result.stderr).toBe(0);
      expect(await getSpec(namespace, 'valid-full')).toEqual(spec);
    });

    it.concurrent.each([
      ['alias', 'aws:kms', 'alias/data-key'],
      ['alias-aws-managed', 'aws:kms', 'alias/aws/s3'],
      ['key-id', 'aws:kms', '1234abcd-12ab-34cd-56ef-1234567890ab'],
      ['multi-region-key-id', 'aws:kms:dsse', 'mrk-1234abcd12ab34cd56ef1234567890ab'],
      ['key-arn', 'aws:kms', 'arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab'],
      [
        'key-arn-govcloud',
        'aws:kms:dsse',
        'arn:aws-us-gov:kms:us-gov-west-1:111122223333:key/mrk-1234abcd12ab34cd56ef1234567890ab',
      ],
      ['alias-arn', 'aws:kms', 'arn:aws:kms:eu-west-2:111122223333:alias/data-key'],
    ])('accepts kmsKeyId as %s', async (form, type, kmsKeyId) => {
      const name = `valid-kms-${form}`;
      const result = await apply(namespace, job(name, { bucket: 'my-bucket', encryption: { type, kmsKeyId } }));
      expect(result.code, result.stderr).toBe(0);
      expect((await getSpec(namespace, name)).encryption).toEqual({ type, kmsKeyId });
    });

    it('lets the mutable fields change and re-applying an unchanged job pass', async () => {
      const base = {
        bucket: 'my-bucket',
        prefix: 'logs/',
        encryption: { type: 'aws:kms', kmsKeyId: 'alias/data-key' },
      };
      expect((await apply(namespace, job('valid-update', base))).code).toBe(0);
      const again = await apply(namespace, job('valid-update', base));
      expect(again.code, again.stderr).toBe(0);
      const changed = {
        ...base,
        suspend: true,
        dryRun: true,
        concurrency: 8,
        connection: {
          region: 'eu-west-1',
          endpoint: 'https://s3.example.com',
          credentialsSecretRef: { name: 'other' },
        },
      };
      const update = await apply(namespace, job('valid-update', changed));
      expect(update.code, update.stderr).toBe(0);
      expect(await getSpec(namespace, 'valid-update')).toMatchObject(changed);
    });
  });

  describe('how kubectl shows it', () => {
    it('kubectl explain encryptionjob.spec.encryption prints the field descriptions', async () => {
      const out = (await kubectl(['explain', 'encryptionjob.spec.encryption'])).stdout;
      expect(out).toMatch(/server-side encryption every object/);
      expect(out).toMatch(/type\s+<string> -required-/);
      expect(out).toMatch(/AES256, aws:kms, aws:kms:dsse/);
      expect(out).toMatch(/kmsKeyId\s+<string>[\s\S]*alias\/NAME/);
      expect(out).toMatch(/bucketKeyEnabled\s+<boolean>[\s\S]*Bucket Key/);
      const secretRef = (await kubectl(['explain', 'encryptionjob.spec.connection.credentialsSecretRef'])).stdout;
      expect(secretRef).toMatch(/own namespace/);
    });

    it('every field of the schema has a description', () => {
      const crd = parse(readFileSync(CRD_FILE, 'utf8')) as {
        spec: { versions: { schema: { openAPIV3Schema: Schema } }[] };
      };
      interface Schema {
        description?: string;
        properties?: Record<string, Schema>;
        items?: Schema;
      }
      const missing: string[] = [];
      const walk = (path: string, s: Schema): void => {
        if (path !== 'metadata' && !s.description?.trim()) missing.push(path || '(root)');
        for (const [key, child] of Object.entries(s.properties ?? {})) walk(path ? `${path}.${key}` : key, child);
        if (s.items?.properties)
          for (const [key, child] of Object.entries(s.items.properties)) walk(`${path}[].${key}`, child);
      };
      for (const v of crd.spec.versions) walk('', v.schema.openAPIV3Schema);
      expect(missing).toEqual([]);
    });

    it('kubectl get ej -o wide shows bucket, prefix and SSE', async () => {
      const spec = { bucket: 'wide-bucket', prefix: 'logs/2024/', encryption: { type: 'aws:kms:dsse' } };
      expect((await apply(namespace, job('shown-wide', spec))).code).toBe(0);
      const out = (await kubectl(['get', 'ej', 'shown-wide', '-n', namespace, '-o', 'wide'])).stdout;
      const [header, row] = out.trim().split('\n');
      const columns = (header ?? '').split(/\s+/);
      expect(columns).toEqual(expect.arrayContaining(['NAME', 'STATUS', 'BUCKET', 'PREFIX', 'SSE']));
      expect(row).toMatch(/wide-bucket\s+logs\/2024\/\s+aws:kms:dsse/);
    });
  });
});
