/** The NATS JetStream the tests use (127.0.0.1:4222 unless told), and the removal of the buckets a test made. */
import { KvBucket } from '../../src/store/kv-leases.js';

export const NATS = process.env.CUTOVER_TEST_NATS ?? 'nats://127.0.0.1:4222';

/** A copy's bucket and the runner's seat beside it (`<bucket>-run`): the names a copy.workers test leaves. */
export const bucketsOf = (bucket: string): string[] => [bucket, `${bucket}-run`];

/** Remove these buckets where they exist; a bucket already gone or NATS not answering is not an error here. */
export async function destroyBuckets(names: readonly string[]): Promise<void> {
  for (const name of names) {
    const b = await KvBucket.open(NATS, name, false).catch(() => undefined);
    await b?.destroy().catch(() => undefined);
    await b?.close();
  }
}
