/**
 * A write proxy that dies without closing its NATS journal: it opens the journal, journals one document, prints
 * the position, then waits for the test to kill it (SIGKILL: no stop entry, no clean disconnect).
 * argv: <spec as JSON> <proxy id>
 */
import { openNatsJournal } from '../../src/proxy/nats-journal.js';
import { resolveSpec } from '../../src/spec/load.js';

const [specJson, proxyId] = process.argv.slice(2);
if (!specJson || !proxyId) throw new Error('usage: nats-crash-child.ts <spec JSON> <proxy id>');
const j = await openNatsJournal(resolveSpec(JSON.parse(specJson), '/tmp'), proxyId);
const pos = await j.writer.append([{ kind: 'doc', op: 'index', index: 'crash', id: 'forwarded-1' }]);
process.stdout.write(`${JSON.stringify(pos)}\n`);
setInterval(() => undefined, 1 << 30);
