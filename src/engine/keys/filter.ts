// Include/exclude globs on the key, relative to the job's prefix, with the AWS
// CLI's meaning of "*" (it also matches "/").
import picomatch from 'picomatch';

export type KeyFilter = (key: string) => boolean;

export function keyFilter(prefix: string, include: string[] = [], exclude: string[] = []): KeyFilter {
  if (include.length === 0 && exclude.length === 0) return () => true;
  const opts = { dot: true, bash: true };
  const inc = include.length > 0 ? picomatch(include, opts) : () => true;
  const exc = exclude.length > 0 ? picomatch(exclude, opts) : () => false;
  return (key) => {
    const rel = key.startsWith(prefix) ? key.slice(prefix.length) : key;
    return inc(rel) && !exc(rel);
  };
}
